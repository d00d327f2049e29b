"""The cost ledger: one entry per job that reached the provider, written in the same transaction
as the conditional UPDATE that ends the job's call, together with its daily roll-up (SpendDay)
at every budget level, the cost reviews' roll-ups (LedgerDay, LedgerUserSpan) and any threshold
notice the new spend crosses."""

from decimal import Decimal

from django.db import connection
from django.utils import timezone

from jobs import metrics, periods
from jobs.models import (
    AuditEvent,
    Budget,
    CostEntry,
    Job,
    LedgerDay,
    LedgerUserSpan,
    SpendDay,
    audit_quote,
    spend_scope,
)

from .audit import audit_record


def entry_scopes(*, user_id, team_id, token_id) -> list[str]:
    """Every budget level an entry counts at, sorted (rollups_write locks their rows in its own
    order, the same for every writer).

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
    if not scopes:
        return
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


LEDGER_DAY_SUMS = ("cost", "entries", "pending_cost", "unknown", "to_check")
LEDGER_USER_SUMS = ("cost", "entries", "pending_cost")

# The levels whose SpendDay rows many people's settlements share (every one in the studio, every
# one in a team), as against a person's or a token's own.
SHARED_SCOPE_PREFIXES = (
    spend_scope(Budget.Level.ORGANIZATION),
    spend_scope(Budget.Level.TEAM, team_id=""),
)


def rollups_write(
    *,
    scopes: list[str],
    day,
    user_id,
    team_id,
    model: str,
    cost: Decimal,
    count: int,
    pending: Decimal,
    unknown: int,
    to_check: int,
) -> None:
    """Add one change of the ledger to every roll-up: the budget levels' (SpendDay, one row per
    scope) and the reviews' (LedgerDay, LedgerUserSpan). Every writer (a settlement, a verdict)
    goes through here, so all lock the rows in one order and never wait for each other in a
    circle:

    1. the SpendDay rows of the person's and the token's own levels (member, personal, token);
    2. the person's LedgerUserSpan rows, the day's before the month's (account deletion, which
       deletes the rows of steps 1 and 2, takes them in this order too);
    3. the LedgerDay row of the day, team and model;
    4. the SpendDay rows of the team and the organization.

    Rows 3 and 4 are shared: every settlement in the studio adds to the organization's row of
    the day, so each waits for the one before it to commit. They come last, just before the
    caller commits (a notice crossed is recorded after them, when the entry costs something),
    so each settlement holds them for two statements and its commit. With the organization's
    row first, 3,000 answers landing at 50 a second waited 1.6 to 3.5 s (median) for it in
    the generation worker (bench/inflight.py, BENCHMARKS.md); now 0.015 to 0.03 s.
    """
    shared = [s for s in scopes if s.startswith(SHARED_SCOPE_PREFIXES)]
    spend_add(scopes=[s for s in scopes if s not in shared], day=day, cost=cost, pending=pending)
    sums = {"cost": cost, "entries": count, "pending_cost": pending}
    _upsert(
        LedgerUserSpan,
        keys={"user_id": user_id, "team_id": team_id},
        rows=[
            {"span": LedgerUserSpan.Span.DAY, "day": day, **sums},
            {"span": LedgerUserSpan.Span.MONTH, "day": day.replace(day=1), **sums},
        ],
        sums=LEDGER_USER_SUMS,
    )
    _upsert(
        LedgerDay,
        keys={"day": day, "team_id": team_id, "model": model},
        rows=[{**sums, "unknown": unknown, "to_check": to_check}],
        sums=LEDGER_DAY_SUMS,
    )
    spend_add(scopes=shared, day=day, cost=cost, pending=pending)


def rollups_forget_user(*, user_id: int) -> None:
    """Move a person's rows of LedgerUserSpan to the deleted accounts' (user None), adding them
    to those, as their ledger entries lose their name: every total stays the same. Runs in the
    account deletion's transaction, after the entries' user was cleared (which waited for any
    verdict in progress on them).

    On PostgreSQL one statement: the DELETE takes each row's lock (waiting for a writer in
    progress, then returning the row as it committed), and the rows are added in key order,
    the order every other writer follows."""
    table = connection.ops.quote_name(LedgerUserSpan._meta.db_table)
    if connection.vendor == "postgresql":
        constraint = LedgerUserSpan._meta.constraints[0].name
        additions = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in LEDGER_USER_SUMS)
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH gone AS (DELETE FROM {table} WHERE user_id = %s "  # noqa: S608
                "RETURNING span, day, team_id, cost, entries, pending_cost) "
                f"INSERT INTO {table} (span, day, user_id, team_id, cost, entries, pending_cost) "
                "SELECT span, day, NULL, team_id, cost, entries, pending_cost FROM gone "
                "ORDER BY span, day, team_id "
                f"ON CONFLICT ON CONSTRAINT {constraint} DO UPDATE SET {additions}",
                [user_id],
            )
        return
    rows = LedgerUserSpan.objects.filter(user_id=user_id).order_by("span", "day", "team_id")
    for row in list(rows.values("span", "day", "team_id", *LEDGER_USER_SUMS)):
        sums = {c: row.pop(c) for c in LEDGER_USER_SUMS}
        _upsert(LedgerUserSpan, keys={"user_id": None, **row}, rows=[sums], sums=LEDGER_USER_SUMS)
    rows.delete()


def _upsert(model, *, keys: dict, rows: list[dict], sums: tuple[str, ...]) -> None:
    """Add `rows` (each `keys` plus its own columns) to `model`'s table, column by column for
    `sums`. On PostgreSQL one statement on the table's unique key (NULLS NOT DISTINCT, so a
    personal space or the deleted accounts are one key). SQLite has no such key: there an
    UPDATE, then an INSERT if it found no row, which its database-wide write lock, held from
    the transaction's first write, makes just as safe."""
    table = connection.ops.quote_name(model._meta.db_table)
    rows = [{**keys, **row} for row in rows]
    columns = list(rows[0])
    # Raw SQL gets each value as its field stores it (on SQLite a UUID is 32 hex characters).
    fields = {c: model._meta.get_field(c) for c in columns}
    rows = [{c: fields[c].get_db_prep_value(v, connection) for c, v in row.items()} for row in rows]
    if connection.vendor == "postgresql":
        constraint = model._meta.constraints[0].name
        values = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(rows))
        additions = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in sums)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} "  # noqa: S608
                f"ON CONFLICT ON CONSTRAINT {constraint} DO UPDATE SET {additions}",
                [row[c] for row in rows for c in columns],
            )
        return
    with connection.cursor() as cursor:
        for row in rows:
            key = [c for c in columns if c not in sums]
            cursor.execute(
                f"UPDATE {table} SET "  # noqa: S608
                + ", ".join(f"{c} = {c} + %s" for c in sums)
                + " WHERE "
                + " AND ".join(f"{c} IS %s" for c in key),
                [row[c] for c in sums] + [row[c] for c in key],
            )
            if not cursor.rowcount:
                cursor.execute(
                    f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
                    f"VALUES ({', '.join(['%s'] * len(columns))})",
                    [row[c] for c in columns],
                )


def _budgets_for_scopes(scopes: list[str]) -> list[Budget]:
    from jobs.selectors.budgets import budgets_for_scopes

    return budgets_for_scopes(scopes)


def ledger_record(
    *, job: Job, outcome: str, cost: Decimal = Decimal(0), possible_cost=None, at=None
):
    """Write the job's entry, its roll-ups (every budget level's, the reviews'), and the notices
    it crosses. The unique
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
    day = periods.utc_today(now)
    # Looked up before the shared roll-up rows are locked, which every settlement waits for.
    budgets = _budgets_for_scopes(scopes) if cost + to_check else []
    rollups_write(
        scopes=scopes,
        day=day,
        user_id=job.owner_id,
        team_id=job.team_id,
        model=job.model,
        cost=cost,
        count=1,
        pending=to_check,
        unknown=int(pending),
        to_check=int(pending),
    )
    if budgets:
        notices_record(budgets=budgets, day=day)
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

    1. Lock the entry if it is still pending (SELECT ... FOR UPDATE), then UPDATE it: charged
       sets the cost to `amount` (what the provider's logs show) or, without one, to the
       possible cost; not charged sets it to 0. Nothing else happens if another admin got
       there first. The lock gives the cost it had, so the roll-ups add the exact difference.
    2. The job shows the same figure, and the roll-ups of the entry's day (every budget
       level's, the reviews') trade the possible cost for the verdict.
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
        row = (
            CostEntry.objects.select_for_update(no_key=True)
            .filter(pk=entry.pk, reconciliation=CostEntry.Reconciliation.PENDING)
            .first()
        )
        if row is None:
            return False
        CostEntry.objects.filter(pk=row.pk).update(
            reconciliation=verdict, cost=cost, reconciled_by=by, reconciled_at=timezone.now()
        )
        Job.objects.filter(pk=row.job_id).update(cost=cost)
        metrics.spend_record(model=row.model, team_id=row.team_id, cost=cost)
        scopes = entry_scopes(user_id=row.user_id, team_id=row.team_id, token_id=row.token_id)
        day = periods.utc_today(row.created_at)
        added, released = cost - row.cost, row.possible_cost or Decimal(0)
        rollups_write(
            scopes=scopes,
            day=day,
            user_id=row.user_id,
            team_id=row.team_id,
            model=row.model,
            cost=added,
            count=0,
            pending=-released,
            unknown=0,
            to_check=-1,
        )
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
