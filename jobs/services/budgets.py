"""Budgets at every level: estimates, the holds placed at submit, limits set by staff and team
managers, and the threshold notices recorded as spend grows."""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from jobs import periods, selectors
from jobs.models import AuditEvent, Budget, BudgetNotice, Team, audit_quote

from . import budget_shares
from .audit import audit_record
from .limits import ModelUnavailableError, SubmitRefusedError


class OverBudgetError(SubmitRefusedError):
    """A level that applies has less left than the worst case of the job (or of the `count`
    jobs of a group, together). The message names the level, and for a group by how much it
    is short (`short`)."""

    def __init__(self, *, estimate: Decimal, left: Decimal, status=None, count: int = 1):
        self.estimate = estimate
        self.left = max(left, Decimal(0))
        self.status = status
        self.count = count
        self.short = estimate - self.left
        label = status.label if status is not None else "Your personal budget"
        when = status.period_words if status is not None else "this month"
        if count == 1:
            message = (
                f"{label} has ${self.left:.2f} left {when}; this video could cost up to "
                f"${estimate:.2f}."
            )
        else:
            message = (
                f"{label} has ${self.left:.2f} left {when}; these {count} videos could cost up "
                f"to ${estimate:.2f} together, ${self.short:.2f} more than that. Nothing was "
                "started."
            )
        super().__init__(message)


class BudgetLimitError(ValueError):
    """A limit a person may not set (negative, or a member's above their team's). For them."""


def estimate_for(model_id: str, *, user, team: Team | None = None) -> Decimal:
    """The most a job on this model can cost: the catalog's top price. Refuses, in the same
    query, a model `user` may not use for a job charged to `team` (ModelUnavailableError: not
    in the catalog, hidden, kept for staff, or not allowed for the team).

    The provider prices per video at its top settings, so the range's maximum bounds every
    duration and size the studio lets a person choose.
    """
    top = list(
        selectors.catalog_models(user=user, team=team)
        .filter(pk=model_id)
        .values_list("price_max", flat=True)[:1]
    )
    if not top:
        raise ModelUnavailableError(model=model_id, team=team)
    return top[0]


def budget_for(user) -> Budget:
    """The user's personal budget row, made with the studio's default limit if there is none."""
    budget, _ = Budget.objects.get_or_create(
        level=Budget.Level.PERSONAL,
        user=user,
        defaults={"limit": settings.DEFAULT_MONTHLY_BUDGET},
    )
    return budget


def budget_reserve(
    *, owner, team: Team | None, token=None, estimate: Decimal, count: int = 1, organization
) -> None:
    """Check that `estimate` fits every budget that applies, holding their rows until the
    caller's transaction ends. Must run inside transaction.atomic(), before the job (and its
    hold) is saved. For a group of `count` jobs (services.groups), `estimate` is the sum of
    their estimates: it is checked against each level at once, under one lock of the rows,
    so the group fits as a whole or is refused as a whole, never job by job. `organization`
    is the organization's budget as budget_shares.room_ensure read it before the transaction
    (None: it has no limit).

    1. Take the estimate from the room of the owner's stripe's share of the organization's
       limit (budget_shares.share_take: one UPDATE, which locks that share, not the
       organization's row). Only when it has too little: lock the organization's row, top
       the share up, or refuse at the organization's level when even every share's room
       taken back leaves too little (budget_shares.share_top_up).
    2. Lock the rows of the other levels that apply (team, member in team, personal, token)
       and read them afresh in one SELECT ... ORDER BY level, id FOR NO KEY UPDATE: PostgreSQL
       locks the rows in that order, so submits that share a level run this check one at a
       time, and two submits never wait for each other in a circle (on SQLite the
       transaction holds the database's write lock from its start). A person with no
       personal row yet gets one (with the studio's default limit) and the rows are locked
       again.
    3. Read each level's spend in its own period and the holds of live jobs charged there,
       the organization's too (selectors.budget_usage: one statement on PostgreSQL).
    4. Refuse, naming the first level that is short (and by how much), if spent + held +
       estimate exceeds its limit. The caller saves the job with `hold=estimate` (a group's
       jobs each with their own estimate), and the jobs table's trigger adds it to HeldTotal
       (after these locks: a transaction that holds a HeldTotal row never waits for a budget
       row); the next submit sees it once this transaction commits.

    Whatever happens between the first lock and the caller's commit is paid by the submits
    queued behind it (bench/budgets.py), so one statement locks, one statement reads, and the
    holds are read from HeldTotal's few rows, not summed over every live job.
    """
    now = timezone.now()
    # Read without its lock: a change of its limit drops every share (budget_set), so a
    # submit that read the old limit finds no share and takes the row's lock after all.
    if organization is not None and not budget_shares.share_take(
        organization=organization, owner=owner, estimate=estimate, now=now
    ):
        organization = (
            Budget.objects.select_for_update(no_key=True)
            .filter(level=Budget.Level.ORGANIZATION, limit__isnull=False)
            .first()
        )
        if organization is not None:
            left = budget_shares.share_top_up(
                organization=organization, owner=owner, estimate=estimate, now=now
            )
            if left is not None:
                status = selectors.budget_statuses([organization], viewer=owner, now=now)[0]
                raise OverBudgetError(estimate=estimate, left=left, status=status, count=count)
    # A limit changed while we waited for a lock is read as committed (READ COMMITTED re-reads
    # a locked row's newest version).
    budgets = _budgets_locked(owner=owner, team=team, token=token, now=now)
    if not any(b.level == Budget.Level.PERSONAL for b in budgets):
        budget_for(owner)
        budgets = _budgets_locked(owner=owner, team=team, token=token, now=now)
    # The organization's own figures too (its row unlocked, its room taken above): spend
    # recorded outside a submit may have used what the shares still promise.
    checked = [organization] if organization is not None else []
    for budget in budgets:
        if budget.limit is None:
            continue
        if budget.level == Budget.Level.PERSONAL and team is not None:
            continue  # a team job is charged to the team, not to the personal space
        checked.append(budget)
    usage = selectors.budget_usage(checked, now=now)
    for budget in checked:
        spent, held = usage[budget.pk]
        if estimate > budget.limit - spent - held:
            status = selectors.budget_status_of(
                budget, spent=spent, held=held, viewer=owner, now=now
            )
            raise OverBudgetError(estimate=estimate, left=status.left, status=status, count=count)


def _budgets_locked(*, owner, team: Team | None, token, now) -> list[Budget]:
    """The budget rows below the organization that apply (selectors.budget_levels_applying),
    locked in their order; their team, user and token are read only if a refusal names them.
    The organization's row is locked only to top a share up.

    Raw SQL on purpose: every submit in the studio waits for these locks, and the ORM spent
    2.8 ms of CPU building this one statement (bench/budgets.py), which at 100 submits a
    second is more than a core's worth of the web's CPU with everything else."""
    levels = [
        fields
        for fields in selectors.budget_levels_applying(owner=owner, team=team, token=token)
        if fields["level"] != Budget.Level.ORGANIZATION
    ]
    where = " OR ".join(
        "(" + " AND ".join(f"{column} = %s" for column in fields) + ")" for fields in levels
    )
    # Raw SQL gets each value as its field stores it (on SQLite a UUID is 32 hex characters).
    params = [
        Budget._meta.get_field(column).get_db_prep_value(value, connection)
        for fields in levels
        for column, value in fields.items()
    ]
    table = Budget._meta.db_table
    lock = " FOR NO KEY UPDATE"
    if connection.vendor == "sqlite":
        # SQLite ignores FOR UPDATE; its transactions take the write lock when they begin
        # (transaction_mode IMMEDIATE), and this write would take it otherwise.
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET locked_at = %s WHERE {where}",  # noqa: S608
                [connection.ops.adapt_datetimefield_value(now), *params],
            )
        lock = ""
    sql = f"SELECT * FROM {table} WHERE {where} ORDER BY level, id{lock}"  # noqa: S608
    return list(Budget.objects.raw(sql, params))


def _limit_words(limit, period) -> str:
    return "no limit" if limit is None else f"${Decimal(limit):.2f} a {period}"


@transaction.atomic
def budget_set(
    *,
    level: int = Budget.Level.PERSONAL,
    user=None,
    team: Team | None = None,
    token=None,
    limit: Decimal | None,
    period: str | None = None,
    changed_by,
    address: str | None = None,
) -> Budget:
    """Set one budget's limit (None for no limit) and period, and record who changed it from
    what (AuditEvent). A member's limit must fit within their team's."""
    if limit is not None and limit < 0:
        raise BudgetLimitError("A budget cannot be negative. Leave it empty for no limit.")
    subject = {"level": level}
    if level in (Budget.Level.TEAM, Budget.Level.MEMBER):
        subject["team"] = team
    if level in (Budget.Level.MEMBER, Budget.Level.PERSONAL):
        subject["user"] = user
    if level == Budget.Level.TOKEN:
        subject["token"] = token
    defaults = {
        "limit": settings.DEFAULT_MONTHLY_BUDGET if level == Budget.Level.PERSONAL else None
    }
    budget, _ = Budget.objects.get_or_create(**subject, defaults=defaults)
    # NO KEY UPDATE, as budget_reserve's UPDATE takes: it queues changes and submits behind one
    # another, yet lets a settlement meanwhile record a notice pointing at this row (its
    # foreign-key check takes KEY SHARE). FOR UPDATE made that settlement wait, and when this
    # change then recorded the same notice, each waited for the other: a deadlock.
    budget = (
        Budget.objects.select_for_update(of=("self",), no_key=True)
        .select_related("team", "user", "token")
        .get(pk=budget.pk)
    )
    if level == Budget.Level.MEMBER and limit is not None:
        team_budget = Budget.objects.filter(level=Budget.Level.TEAM, team=team).first()
        team_limit = team_budget.limit if team_budget is not None else None
        if team_limit is not None and limit > team_limit:
            raise BudgetLimitError(
                f"A member's budget must fit within the team's: {team.label} has "
                f"${team_limit} a {team_budget.period}."
            )
    period = period or budget.period
    before = {"limit": _money(budget.limit), "period": budget.period}
    if budget.limit == limit and budget.period == period:
        return budget
    Budget.objects.filter(pk=budget.pk).update(limit=limit, period=period)
    budget.limit, budget.period = limit, period
    if level == Budget.Level.ORGANIZATION:
        budget_shares.shares_drop()
    audit_record(
        actor=changed_by,
        action=AuditEvent.Action.BUDGET_SET,
        team=budget.team,
        user=_budget_person(budget),
        summary=f"{_audit_label(budget)}: {_limit_words(before['limit'], before['period'])} → "
        f"{_limit_words(limit, period)}",
        before=before,
        after={"limit": _money(limit), "period": period},
        address=address,
    )
    notices_record(budgets=[budget])
    return budget


@transaction.atomic
def budget_delete(*, budget: Budget, by, address: str | None = None) -> None:
    """Delete a budget row (staff, in the admin), and record it. A level with no row has no
    limit, but for a personal space, which gets DEFAULT_MONTHLY_BUDGET again at its next job."""
    audit_record(
        actor=by,
        action=AuditEvent.Action.BUDGET_DELETED,
        team=budget.team,
        user=_budget_person(budget),
        summary=f"{_audit_label(budget)}: deleted (it was "
        f"{_limit_words(budget.limit, budget.period)})",
        before={"limit": _money(budget.limit), "period": budget.period},
        address=address,
    )
    if budget.level == Budget.Level.ORGANIZATION:
        Budget.objects.select_for_update().filter(pk=budget.pk).first()
        budget_shares.shares_drop()
    budget.delete()


def _budget_person(budget: Budget):
    """The person a budget is about: a member's or personal budget's user, a token's owner."""
    return budget.user or (budget.token.user if budget.token_id else None)


def _audit_label(budget: Budget) -> str:
    """How the audit trail names a budget: people only as {user} (AuditEvent.text)."""
    level = budget.level
    if level == Budget.Level.ORGANIZATION:
        return "The organization"
    if level == Budget.Level.TEAM:
        return audit_quote(budget.team.label)
    if level == Budget.Level.MEMBER:
        return f"{{user}}'s budget in the {audit_quote(budget.team.label)}"
    if level == Budget.Level.PERSONAL:
        return "{user}'s personal budget"
    return f"{{user}}'s API token {audit_quote(budget.token.prefix)}…"


def _money(value) -> str | None:
    return None if value is None else str(Decimal(value).quantize(Decimal("0.01")))


def notices_record(*, budgets: list[Budget], day=None) -> int:
    """Record a notice for each threshold (50%, 80%, 100%) each budget's spend has crossed in
    the period holding `day` (today by default). Racing callers insert the same rows; the
    unique constraint keeps one of each (ignore_conflicts), so none is ever recorded twice.

    Spend is the ledger's (pending possible costs included), not holds: a notice says money
    was spent, not that it might be. Returns how many were new.
    """
    day = day or periods.utc_today()
    rows = []
    for budget in budgets:
        if not budget.limit:
            continue
        start = periods.period_start(budget.period, day)
        last = periods.period_end(budget.period, day)
        spent = selectors.scope_spend(
            scope=budget.scope, first_day=start, last_day=last - timedelta(days=1)
        )
        for threshold in BudgetNotice.THRESHOLDS:
            if spent * 100 >= budget.limit * threshold:
                rows.append(
                    BudgetNotice(
                        budget=budget,
                        level=budget.level,
                        team_id=budget.team_id,
                        user_id=budget.user_id
                        or (budget.token.user_id if budget.token_id else None),
                        period=budget.period,
                        period_start=start,
                        threshold=threshold,
                        limit=budget.limit,
                        spent=spent,
                    )
                )
    if not rows:
        return 0
    before = BudgetNotice.objects.filter(budget__in={r.budget_id for r in rows}).count()
    BudgetNotice.objects.bulk_create(rows, ignore_conflicts=True)
    new = BudgetNotice.objects.filter(budget__in={r.budget_id for r in rows}).count() - before
    if new:
        transaction.on_commit(notices_deliver, robust=True)
    return new


def notices_deliver() -> None:
    """After new notices commit: hand them to each way they are delivered. Each records its
    deliveries once per notice, so a repeat call (or the sweeper's) sends nothing twice."""
    from .alerts import budget_notices_email
    from .webhooks import budget_alerts_record

    budget_alerts_record()
    budget_notices_email()
