"""The cost ledger: one entry per job that reached the provider, written in the same transaction
as the conditional UPDATE that ends the job's call, together with its daily roll-up (SpendDay)
at every budget level and any threshold notice the new spend crosses."""

from decimal import Decimal

from django.db import connection
from django.utils import timezone

from jobs import metrics, periods
from jobs.models import AuditEvent, Budget, CostEntry, Job, SpendDay, audit_quote, spend_scope

from .audit import audit_record


def entry_scopes(*, user_id, team_id, token_id) -> list[str]:
    """Every budget level an entry counts at, in one fixed order (so that two settlements that
    share levels update their roll-up rows in the same order and never deadlock).

    An entry whose person deleted their account (user_id None) counts at the organization, its
    team and its token only: their own budgets went with them."""
    scopes = [spend_scope(Budget.Level.ORGANIZATION)]
    if team_id is not None:
        scopes.append(spend_scope(Budget.Level.TEAM, team_id=team_id))
        if user_id is not None:
            scopes.append(spend_scope(Budget.Level.MEMBER, team_id=team_id, user_id=user_id))
    elif user_id is not None:
        scopes.append(spend_scope(Budget.Level.PERSONAL, user_id=user_id))
    if token_id is not None:
        scopes.append(spend_scope(Budget.Level.TOKEN, token_id=token_id))
    return sorted(scopes)


def spend_add(*, scopes: list[str], day, cost: Decimal, pending: Decimal) -> None:
    """Add to the day's roll-up row of each scope: one INSERT … ON CONFLICT DO UPDATE, which
    PostgreSQL and SQLite both run atomically, so racing settlements never lose an addition."""
    table = connection.ops.quote_name(SpendDay._meta.db_table)
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(scopes))
    params = []
    for scope in sorted(scopes):
        params += [scope, day, cost, pending]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (scope, day, cost, pending) VALUES {rows} "  # noqa: S608
            "ON CONFLICT (scope, day) DO UPDATE SET cost = "
            f"{table}.cost + EXCLUDED.cost, pending = {table}.pending + EXCLUDED.pending",
            params,
        )


def _budgets_for_scopes(scopes: list[str]) -> list[Budget]:
    from jobs.selectors.budgets import budgets_for_scopes

    return budgets_for_scopes(scopes)


def ledger_record(
    *, job: Job, outcome: str, cost: Decimal = Decimal(0), possible_cost=None, at=None
):
    """Write the job's entry, its roll-up at every level, and the notices it crosses. The unique
    constraint on `job` makes a second entry fail loudly. Runs inside the caller's transaction
    (the one that ends the job's call). `at` (now by default) is for imports and tests."""
    from .budgets import notices_record

    pending = outcome == CostEntry.Outcome.UNKNOWN
    now = at or timezone.now()
    entry = CostEntry.objects.create(
        job=job,
        user_id=job.owner_id,
        team_id=job.team_id,
        token_id=job.token_id,
        provider_key_id=job.provider_key_id,
        model=job.model,
        outcome=outcome,
        cost=cost,
        possible_cost=possible_cost,
        reconciliation=CostEntry.Reconciliation.PENDING if pending else "",
        created_at=now,
    )
    metrics.spend_record(model=job.model, team_id=job.team_id, cost=cost)
    scopes = entry_scopes(user_id=job.owner_id, team_id=job.team_id, token_id=job.token_id)
    to_check = (possible_cost or Decimal(0)) if pending else Decimal(0)
    spend_add(scopes=scopes, day=periods.utc_today(now), cost=cost, pending=to_check)
    if cost + to_check:
        notices_record(budgets=_budgets_for_scopes(scopes), day=periods.utc_today(now))
    return entry


def ledger_reconcile(
    *,
    entry: CostEntry,
    charged: bool,
    by,
    amount: Decimal | None = None,
    address: str | None = None,
) -> bool:
    """An admin's verdict on an unknown outcome, after checking the provider's logs.

    1. One conditional UPDATE on the still-pending entry: charged sets the cost to `amount`
       (what the provider's logs show) or, without one, to the possible cost; not charged
       leaves it at 0. Nothing else happens if another admin got there first.
    2. The job shows the same figure, and the roll-up of the entry's day trades the possible
       cost for the verdict at every level.
    3. The verdict is recorded in the audit trail (who, from where, pending → verdict).
    """
    from django.db import transaction

    from .budgets import notices_record

    if not charged:
        cost = Decimal(0)
    elif amount is not None:
        cost = amount
    else:
        cost = entry.possible_cost or Decimal(0)
    verdict = CostEntry.Reconciliation.CHARGED if charged else CostEntry.Reconciliation.NOT_CHARGED
    with transaction.atomic():
        done = CostEntry.objects.filter(
            pk=entry.pk, reconciliation=CostEntry.Reconciliation.PENDING
        ).update(reconciliation=verdict, cost=cost, reconciled_by=by, reconciled_at=timezone.now())
        if not done:
            return False
        row = CostEntry.objects.get(pk=entry.pk)
        Job.objects.filter(pk=row.job_id).update(cost=cost)
        metrics.spend_record(model=row.model, team_id=row.team_id, cost=cost)
        scopes = entry_scopes(user_id=row.user_id, team_id=row.team_id, token_id=row.token_id)
        day = periods.utc_today(row.created_at)
        spend_add(scopes=scopes, day=day, cost=cost, pending=-(row.possible_cost or Decimal(0)))
        if cost > (row.possible_cost or Decimal(0)):
            notices_record(budgets=_budgets_for_scopes(scopes), day=day)
        audit_record(
            actor=by,
            action=AuditEvent.Action.COST_RECONCILED,
            team=row.team,
            user=row.user,
            summary=f"Marked {{user}}'s job {row.job_id} on {audit_quote(row.model)} "
            f"{'charged' if charged else 'not charged'}: it counts ${cost:.2f} "
            f"(possible cost ${row.possible_cost or Decimal(0):.2f})",
            before={"reconciliation": CostEntry.Reconciliation.PENDING, "cost": str(entry.cost)},
            after={"reconciliation": verdict, "cost": str(cost)},
            address=address,
        )
    return True
