"""Checks of the budget hierarchy against the ledger itself, for the budget race and level tests.

They recompute what each level has spent and holds straight from the ledger (CostEntry) and the
live jobs, with their own idea of which level an entry counts at, so they do not trust the code
under test (SpendDay, jobs/selectors/budgets.py) to check itself. Likewise for the cost
reviews' roll-ups (LedgerDay, LedgerUserSpan): assert_review_rollups_match_ledger.
"""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db import connection
from django.db.models import Q, Sum
from django.utils import timezone

from jobs import periods
from jobs.models import (
    Budget,
    CostEntry,
    HeldTotal,
    Job,
    LedgerDay,
    LedgerUserSpan,
    SpendDay,
    Team,
)

ZERO = Decimal(0)


def entry_levels(*, user_id, team_id, token_id) -> list[str]:
    """The scopes an entry charged to `team_id` (None: personal) through `token_id` counts at."""
    levels = ["org"]
    if team_id is not None:
        levels.append(f"team:{team_id}")
        if user_id is not None:  # None: the person deleted their account, and their budgets
            levels.append(f"member:{team_id}:{user_id}")
    elif user_id is not None:
        levels.append(f"user:{user_id}")
    if token_id is not None:
        levels.append(f"token:{token_id}")
    return levels


def ledger_sums() -> dict[tuple[str, dt.date], tuple[Decimal, Decimal]]:
    """(cost, pending possible cost) per scope and UTC day, summed from the ledger's entries."""
    sums = defaultdict(lambda: [ZERO, ZERO])
    for entry in CostEntry.objects.all():
        day = entry.created_at.astimezone(dt.UTC).date()
        pending = entry.possible_cost or ZERO
        pending = pending if entry.reconciliation == CostEntry.Reconciliation.PENDING else ZERO
        for scope in entry_levels(
            user_id=entry.user_id, team_id=entry.team_id, token_id=entry.token_id
        ):
            sums[(scope, day)][0] += entry.cost
            sums[(scope, day)][1] += pending
    return {key: (cost, pending) for key, (cost, pending) in sums.items()}


def assert_rollup_matches_ledger() -> None:
    """Every SpendDay row holds exactly its scope's and day's sums from the ledger, and every
    scope and day the ledger has has its row."""
    rollup = {(row.scope, row.day): (row.cost, row.pending) for row in SpendDay.objects.all()}
    assert rollup == ledger_sums()
    assert_review_rollups_match_ledger()


def assert_held_totals_match_live_jobs() -> None:
    """HeldTotal (kept by a trigger on the jobs table, on PostgreSQL) holds exactly each scope's
    holds, summed here from the live jobs with this file's own idea of the scopes. On SQLite
    there is no trigger and no HeldTotal row: the budget check sums the live jobs itself."""
    if connection.vendor != "postgresql":
        assert not HeldTotal.objects.exists()
        return
    truth = defaultdict(lambda: ZERO)
    for job in Job.objects.filter(status__in=Job.LIVE):
        for scope in entry_levels(user_id=job.owner_id, team_id=job.team_id, token_id=job.token_id):
            truth[scope] += job.hold
    totals = HeldTotal.objects.values("scope").annotate(total=Sum("held"))
    kept = {row["scope"]: row["total"] for row in totals if row["total"]}
    assert kept == {scope: held for scope, held in truth.items() if held}


def _in_scope(budget: Budget, *, team="team_id", user="user_id", via="token_id") -> Q:
    level = budget.level
    if level == Budget.Level.ORGANIZATION:
        return Q()
    if level == Budget.Level.TEAM:
        return Q(**{team: budget.team_id})
    if level == Budget.Level.MEMBER:
        return Q(**{team: budget.team_id, user: budget.user_id})
    if level == Budget.Level.PERSONAL:
        return Q(**{f"{team}__isnull": True, user: budget.user_id})
    return Q(**{via: budget.token_id})


def level_usage(budget: Budget, now=None) -> tuple[Decimal, Decimal]:
    """(spent in the current period, pending possible costs included; held by live jobs) at
    `budget`'s level, from the ledger and the jobs."""
    now = now or timezone.now()
    start = periods.period_start_datetime(budget.period, now)
    end = dt.datetime.combine(
        periods.period_end(budget.period, start.date()), dt.time.min, tzinfo=dt.UTC
    )
    entries = CostEntry.objects.filter(_in_scope(budget), created_at__gte=start, created_at__lt=end)
    spent = entries.aggregate(total=Sum("cost"))["total"] or ZERO
    spent += (
        entries.filter(reconciliation=CostEntry.Reconciliation.PENDING).aggregate(
            total=Sum("possible_cost")
        )["total"]
        or ZERO
    )
    held = (
        Job.objects.filter(_in_scope(budget, user="owner_id"), status__in=Job.LIVE).aggregate(
            total=Sum("hold")
        )["total"]
        or ZERO
    )
    return spent, held


def levels_over(now=None) -> list[str]:
    """Every budget whose spent + held is above its limit, as words for the failure message."""
    over = []
    for budget in Budget.objects.exclude(limit=None):
        spent, held = level_usage(budget, now)
        if spent + held > budget.limit:
            over.append(f"{budget} (level {budget.level}): spent {spent} + held {held}")
    return over


def team_with_members(name: str, members, *, by=None) -> Team:
    """A team made by staff, with `members` added as plain members."""
    from jobs import services

    team = services.team_create(name=name, by=by)
    for user in members:
        services.membership_set(team=team, user=user, by=by)
    return team


def ledger_review_sums() -> dict[tuple, list]:
    """[cost, entries, pending possible cost, unknown outcomes, still to check] per UTC day,
    user, team and model, summed from the ledger's entries one by one."""
    sums = defaultdict(lambda: [ZERO, 0, ZERO, 0, 0])
    for entry in CostEntry.objects.all():
        key = (
            entry.created_at.astimezone(dt.UTC).date(),
            entry.user_id,
            entry.team_id,
            entry.model,
        )
        pending = entry.reconciliation == CostEntry.Reconciliation.PENDING
        figures = sums[key]
        figures[0] += entry.cost
        figures[1] += 1
        figures[2] += (entry.possible_cost or ZERO) if pending else ZERO
        figures[3] += entry.outcome == CostEntry.Outcome.UNKNOWN
        figures[4] += pending
    return dict(sums)


def assert_review_rollups_match_ledger() -> None:
    """Both review roll-ups hold exactly the ledger's sums, for every (day, user, team, model)
    added up along the dimensions each keeps: LedgerDay per day, team and model;
    LedgerUserSpan per user and team, per day and per month. Every key the ledger has has its
    row, and no other row exists."""
    by_day, by_user = {}, {}
    for (day, user_id, team_id, model), figures in ledger_review_sums().items():
        row = by_day.setdefault((day, team_id, model), [ZERO, 0, ZERO, 0, 0])
        for index, value in enumerate(figures):
            row[index] += value
        for span, start in (("day", day), ("month", day.replace(day=1))):
            row = by_user.setdefault((span, start, user_id, team_id), [ZERO, 0, ZERO])
            for index, value in enumerate(figures[:3]):
                row[index] += value
    assert {
        (r.day, r.team_id, r.model): [r.cost, r.entries, r.pending_cost, r.unknown, r.to_check]
        for r in LedgerDay.objects.all()
    } == by_day
    assert {
        (r.span, r.day, r.user_id, r.team_id): [r.cost, r.entries, r.pending_cost]
        for r in LedgerUserSpan.objects.all()
    } == by_user
    assert LedgerDay.objects.count() == len(by_day)  # no key twice
    assert LedgerUserSpan.objects.count() == len(by_user)
