"""The organization's limit in shares, so that submits do not queue for the organization's
budget row (issue 25: with one row, every submit in the studio waited for it, and past about
80 submits a second they queued there).

The organization's room is split into a few shares (BudgetShare), one per stripe of people
(the owner's id modulo BudgetShare.STRIPES). A submit takes its job's worst case from its
stripe's share in one statement (`room = room - estimate WHERE room >= estimate`), which locks
that one share until the submit commits, never the organization's row. When the share looks
short, the submit first tops it up in a short transaction of its own (room_ensure), so that
the organization's row is held for a few statements, not for a whole submit; only a submit
that still finds too little (others of its stripe took the room meanwhile) tops up inside its
own transaction. A top-up takes room from what is neither used nor in another share; when
that is too little, it first takes every share's room back (locking them all). Only then,
with nothing set aside anywhere, is the organization short, and the submit is refused there:
exactly when

    the organization's spend + holds + the job's worst case > the organization's limit,

as with one row. Why the limit still holds: the organization's spend + holds + every share's
room never exceed the limit. A submit moves its estimate from a share's room into holds; a
settlement only lowers holds; and a share is topped up, under the organization's lock, only
by what the limit leaves beyond spend, holds and the other shares' room, read in that order
(a submit committing in between is counted twice, never missed). Spend recorded outside a
submit (a reconciliation's verdict, a cost above its hold) is caught by the organization's
own figures, which every submit reads with its other levels.

Lock order (every submit takes a subset, in this order, so none waits in a circle): the
organization's row, the shares (by id), then the team, member, personal and token rows.
"""

from decimal import ROUND_DOWN, Decimal

from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from jobs import periods, selectors
from jobs.models import Budget, BudgetShare

# A share is topped up by enough for this many more jobs like the one that asked, but never by
# more than this part of what the organization has neither used nor set aside, so the other
# stripes find room too.
TOP_UP_JOBS = 16
TOP_UP_PART_OF_FREE = 8
# A submit tops its share up before its own transaction when it has room for fewer jobs like
# it than this (others of its stripe may take some meanwhile).
ENSURE_JOBS = 2


def share_take(*, organization: Budget, owner, estimate: Decimal, now) -> bool:
    """Take `estimate` from the owner's stripe's share, which stays locked until the caller's
    transaction ends. False (and nothing locked) when the share has too little, or was set
    under another limit or period than `organization`'s (read without its lock)."""
    # A savepoint, because an UPDATE that waited for another submit on the same share and then
    # found too little room keeps that row locked: the caller must not hold it while it waits
    # for the organization's row, which a submit taking every share back may hold.
    savepoint = transaction.savepoint()
    # Raw SQL, as the budget rows' lock (services.budgets._budgets_locked): every submit runs it.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {BudgetShare._meta.db_table} SET room = room - %s"  # noqa: S608
            ' WHERE period_start = %s AND period = %s AND "limit" = %s AND stripe = %s'
            " AND room >= %s",
            [
                estimate,
                _period_start(organization, now),
                organization.period,
                organization.limit,
                owner.pk % BudgetShare.STRIPES,
                estimate,
            ],
        )
        taken = cursor.rowcount
    if taken:
        transaction.savepoint_commit(savepoint)
    else:
        transaction.savepoint_rollback(savepoint)
    return bool(taken)


def room_ensure(*, owner, estimate: Decimal) -> Budget | None:
    """Before a submit's transaction: if the owner's stripe's share has less room than
    ENSURE_JOBS jobs like this one (read without a lock), top it up in a transaction of its
    own, which holds the organization's row for a few statements. Refuses nothing (the
    submit's own transaction does, with every level's figures). Returns the organization's
    budget with a limit, as read, or None when it has none."""
    now = timezone.now()
    today = periods.utc_today(now)
    # Raw SQL on purpose, as the budget rows' lock: the ORM spent 1.8 ms of CPU on this read.
    current = " OR ".join(["(s.period = %s AND s.period_start = %s)"] * len(Budget.Period.values))
    params = [owner.pk % BudgetShare.STRIPES]
    for period in Budget.Period.values:
        params += [period, periods.period_start(period, today)]
    params.append(Budget.Level.ORGANIZATION)
    sql = (
        f"SELECT b.*, (SELECT s.room FROM {BudgetShare._meta.db_table} s"  # noqa: S608
        ' WHERE s.stripe = %s AND s."limit" = b."limit" AND s.period = b.period'
        f" AND ({current}) LIMIT 1) AS room"
        f' FROM {Budget._meta.db_table} b WHERE b.level = %s AND b."limit" IS NOT NULL LIMIT 1'
    )
    organization = next(iter(Budget.objects.raw(sql, params)), None)
    if organization is not None and organization.room is not None:
        # An annotation has no field to convert it: SQLite's decimals come back as floats.
        organization.room = Decimal(str(organization.room))
    if organization is None or (
        organization.room is not None and organization.room >= estimate * ENSURE_JOBS
    ):
        return organization
    with transaction.atomic():
        locked = (
            Budget.objects.select_for_update(no_key=True)
            .filter(level=Budget.Level.ORGANIZATION, limit__isnull=False)
            .first()
        )
        if locked is not None:
            share_top_up(organization=locked, owner=owner, estimate=estimate, now=now, take=False)
    return organization


def share_top_up(
    *, organization: Budget, owner, estimate: Decimal, now, take: bool = True
) -> Decimal | None:
    """With the organization's row locked (by the caller, first, and read afresh): make room
    for `estimate` in the owner's stripe's share, and take it (`take`: the caller's job, saved
    in the same transaction, holds it) or leave it there for the submit that follows. Returns
    what the organization has left (its limit less spend and holds) when even every share's
    room taken back leaves too little, so the caller refuses the job at the organization's
    level (or, not taking, leaves that to the submit); None when done."""
    # Shares set under another period or limit are no promise any more.
    current = _shares(organization, now)
    BudgetShare.objects.exclude(pk__in=current.values("pk")).delete()
    set_aside = current.aggregate(total=Sum("room"))["total"] or Decimal(0)
    used = _used(organization, now)  # after the rooms: a submit in between counts twice
    if used + set_aside + estimate > organization.limit and set_aside:
        current.update(room=0)  # waits for the submits taking from them to commit
        set_aside, used = Decimal(0), _used(organization, now)
    free = organization.limit - used - set_aside
    if free < estimate:
        return organization.limit - used
    extra = min(estimate * TOP_UP_JOBS, (free - estimate) / TOP_UP_PART_OF_FREE)
    extra = extra.quantize(Decimal("0.000001"), rounding=ROUND_DOWN)  # the column's places
    if not take:
        extra += estimate
    share, created = current.get_or_create(
        stripe=owner.pk % BudgetShare.STRIPES,
        defaults={
            "period_start": _period_start(organization, now),
            "period": organization.period,
            "limit": organization.limit,
            "room": extra,
        },
    )
    if not created:
        current.filter(pk=share.pk).update(room=F("room") + extra)
    return None


def shares_drop() -> None:
    """Forget every share (the organization's limit or period changed, or its row went): the
    next submit of each stripe takes the organization's row and gets a share under the new
    limit. The caller holds the organization's row; deleting waits for submits on shares."""
    BudgetShare.objects.all().delete()


def _shares(organization: Budget, now):
    """The shares set under the organization's limit, for its current period."""
    return BudgetShare.objects.filter(
        period_start=_period_start(organization, now),
        period=organization.period,
        limit=organization.limit,
    )


def _period_start(organization: Budget, now):
    return periods.period_start(organization.period, periods.utc_today(now))


def _used(organization: Budget, now) -> Decimal:
    spent, held = selectors.budget_usage([organization], now=now)[organization.pk]
    return spent + held
