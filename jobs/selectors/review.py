"""The cost review's figures: a period of the ledger by user, team, model and day, its entries,
the CSV's rows, and the reconciliation's totals.

The figures read the ledger's roll-ups (models/rollups.py), which the ledger's own transactions
keep exact per UTC day: the review's periods are whole UTC days (views/review.py's Period), so
no figure needs the ledger itself, and a year of 10 M entries adds up a few hundred thousand
rows at most. Lists of entries and the CSV read the ledger, a page or a chunk at a time.

Staff review the whole ledger; a team's managers review the same figures with `team=` set, so
they read only the entries charged to their team (never a member's personal spend)."""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from jobs import periods
from jobs.models import (
    Budget,
    CostEntry,
    Job,
    LedgerDay,
    LedgerUserSpan,
    Membership,
    SpendDay,
    Team,
)

from .budgets import MICRODOLLAR, BudgetStatus, budget_statuses, scope_spend
from .spending import PENDING, SPEND_FIGURES, with_zeros

PERSONAL_SPACES = "Personal spaces"  # how the by-team table names the entries of no team
# How the by-user table names the entries of people who deleted their accounts (one row for all).
DELETED_ACCOUNTS = "(deleted accounts)"


def ledger_for_period(*, start, end, team: Team | None = None):
    """The ledger entries created in [start, end), all of them (cost_created index) or, with
    `team`, only those charged to it (cost_team_created index)."""
    entries = CostEntry.objects.filter(created_at__gte=start, created_at__lt=end)
    return entries if team is None else entries.filter(team=team)


def spend_totals(entries) -> dict:
    return with_zeros(entries.aggregate(**SPEND_FIGURES))


def spend_by_user(entries) -> list[dict]:
    """One row per user with entries: user_id, username, total, count, pending; unsorted.

    Grouped by user_id alone, with the names fetched afterwards for the grouped ids: joining
    every entry to auth_user before grouping doubled the query's time on a million rows.
    """
    rows = [with_zeros(row) for row in entries.values("user_id").annotate(**SPEND_FIGURES)]
    names = usernames_by_id([row["user_id"] for row in rows])
    for row in rows:
        row["username"] = (
            DELETED_ACCOUNTS if row["user_id"] is None else names.get(row["user_id"], "")
        )
    return rows


def spend_by_team(*, first_day: date, last_day: date) -> list[dict]:
    """One row per team that has entries in the period (team_id, name, total, count, pending),
    and one for the personal spaces (team_id None); unsorted."""
    return review_by_user_and_team(first_day=first_day, last_day=last_day)[1]


def review_by_user_and_team(*, first_day: date, last_day: date) -> tuple[list, list]:
    """(users, teams): the staff review's tables by user (as review_by_user) and by team (as
    spend_by_team), from one query on LedgerUserSpan grouped by user and team: at most
    people times teams rows, added up here, instead of a second pass over the roll-ups."""
    rows = (
        _user_spans(first_day, last_day)
        .values("user_id", "team_id")
        .annotate(**ROLLUP_FIGURES)
        .order_by()
    )
    users, teams = {}, {}
    for row in rows:
        for key, table in ((row["user_id"], users), (row["team_id"], teams)):
            _add(table, key, row)
    return _named_users(_with_zeros(users)), _named_teams(_with_zeros(teams))


def _add(table: dict, key, row: dict) -> None:
    """Add a grouped row's figures to table[key]. The roll-ups' sums are never NULL (their
    columns are NOT NULL, and a group has a row), so with_zeros waits for the totals."""
    group = table.get(key)
    if group is None:
        table[key] = {"total": row["total"], "count": row["count"], "pending": row["pending"]}
    else:
        group["total"] += row["total"]
        group["count"] += row["count"]
        group["pending"] += row["pending"]


def _with_zeros(table: dict) -> dict:
    return {key: with_zeros(figures) for key, figures in table.items()}


def _named_users(users: dict) -> list[dict]:
    names = usernames_by_id([pk for pk in users if pk is not None])
    return [
        {
            "user_id": pk,
            "username": DELETED_ACCOUNTS if pk is None else names.get(pk, ""),
            **figures,
        }
        for pk, figures in users.items()
    ]


def _named_teams(teams: dict) -> list[dict]:
    """The by-team table's rows: the teams by name, and the personal spaces if any team or
    any personal spend is there."""
    names = dict(Team.objects.values_list("pk", "name"))
    personal = teams.pop(None, with_zeros({}))
    rows = [{"team_id": pk, "name": names[pk], **figures} for pk, figures in teams.items()]
    if rows or personal["total"] or personal["pending"]:
        rows.append({"team_id": None, "name": PERSONAL_SPACES, **personal})
    return rows


def usernames_by_id(ids: list[int], *, chunk: int = 5000) -> dict[int, str]:
    """{id: username}, in chunks that stay under SQLite's limit on query parameters."""
    User = get_user_model()
    names = {}
    for index in range(0, len(ids), chunk):
        users = User.objects.filter(pk__in=ids[index : index + chunk])
        names.update(users.values_list("pk", User.USERNAME_FIELD))
    return names


def spend_by_day_and_model(entries, *, first_day: date, last_day: date):
    """(days, models) of some ledger entries (the weekly digest's), as
    review_by_day_and_model gives them, from one query grouped by day and model."""
    rows = (
        entries.annotate(day=TruncDate("created_at"))
        .values("day", "model")
        .annotate(**SPEND_FIGURES)
        .order_by()
    )
    return _days_and_models(rows, first_day=first_day, last_day=last_day)


def _days_and_models(rows, *, first_day: date, last_day: date):
    """(days, models): the period's spend per UTC day (every day, zeros included, in date
    order) and per model (unsorted), from rows grouped by day and model. The grouped rows
    number at most days times models, so adding them up here is cheap; two separate grouped
    queries would read everything twice."""
    days, models = {}, {}
    for row in rows:
        row["total"] = row["total"] or Decimal(0)  # the ledger's sums: NULL for a group of
        row["pending"] = row["pending"] or Decimal(0)  # no pending entry
        for key, table in ((row["day"], days), (row["model"], models)):
            _add(table, key, row)
    days, models = _with_zeros(days), _with_zeros(models)
    every_day = []
    day = first_day
    while day <= last_day:
        every_day.append({"day": day, **days.get(day, with_zeros({}))})
        day += timedelta(days=1)
    return every_day, [{"model": model, **figures} for model, figures in models.items()]


# The review's figures, from the roll-ups -----------------------------------------------------

ROLLUP_FIGURES = {
    "total": Sum("cost"),
    "count": Sum("entries"),
    "pending": Sum("pending_cost"),
}


def _days(first_day: date, last_day: date, *, team: Team | None = None):
    """LedgerDay's rows of the period (whole UTC days), all or a team's."""
    rows = LedgerDay.objects.filter(day__gte=first_day, day__lte=last_day)
    return rows if team is None else rows.filter(team=team)


def _user_spans(first_day: date, last_day: date, *, team: Team | None = None):
    """LedgerUserSpan's rows that add up to the period exactly: the month rows of the calendar
    months it covers whole, and the day rows of the days before and after them (or of every
    day, in a period within one month). A year reads 12 month rows and at most 60 day rows per
    person and team, instead of 365."""
    first_month = first_day if first_day.day == 1 else _next_month(first_day)
    after_months = _next_month(last_day)  # the day after the last whole month
    if after_months - timedelta(days=1) != last_day:
        after_months = last_day.replace(day=1)
    day, month = LedgerUserSpan.Span.DAY, LedgerUserSpan.Span.MONTH
    if first_month >= after_months:  # no whole month: its days
        spans = Q(span=day, day__gte=first_day, day__lte=last_day)
    else:
        spans = (
            Q(span=day, day__gte=first_day, day__lt=first_month)
            | Q(span=month, day__gte=first_month, day__lt=after_months)
            | Q(span=day, day__gte=after_months, day__lte=last_day)
        )
    rows = LedgerUserSpan.objects.filter(spans)
    return rows if team is None else rows.filter(team=team)


def _next_month(day: date) -> date:
    """The first day of the month after `day`'s."""
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def review_by_user(*, first_day: date, last_day: date, team: Team | None = None) -> list[dict]:
    """One row per user with entries in the period (with `team`, charged to it): user_id,
    username, total, count, pending; unsorted. The entries of people who deleted their
    accounts are one row, user_id None. Grouped by user_id, with the names fetched afterwards
    for the grouped ids."""
    rows = (
        _user_spans(first_day, last_day, team=team)
        .values("user_id")
        .annotate(**ROLLUP_FIGURES)
        .order_by()
    )
    return _named_users({row["user_id"]: with_zeros(row) for row in rows})


def review_by_day_and_model(*, first_day: date, last_day: date, team: Team | None = None):
    """(days, models) of the period (with `team`, of its entries), from one query on LedgerDay
    grouped by day and model."""
    rows = (
        _days(first_day, last_day, team=team)
        .values("day", "model")
        .annotate(**ROLLUP_FIGURES)
        .order_by()
    )
    return _days_and_models(rows, first_day=first_day, last_day=last_day)


def review_totals(
    *, first_day: date, last_day: date, within: Team | None = None, by_user: bool, **subject
) -> dict:
    """A drill-down's totals (total, count, pending) in the period: of one person (`by_user`,
    with `user=` or `user__username=`) from LedgerUserSpan, or of one model or team
    (`model=`, `team=`, `team__isnull=`) from LedgerDay; `within` a team, only its entries."""
    rows = (_user_spans if by_user else _days)(first_day, last_day, team=within)
    return with_zeros(rows.filter(**subject).aggregate(**ROLLUP_FIGURES))


def ledger_entries_for_review(entries):
    """Entries with their job, user and team, for a drill-down page (paginate it)."""
    return entries.select_related("user", "job", "team").order_by("-created_at", "-pk")


def ledger_rows_for_export(entries):
    """One tuple per entry with the job's facts, streamed from the database in chunks. The team
    is None for an entry charged to its user's personal space."""
    rows = entries.order_by("created_at", "pk").values_list(
        "created_at",
        "user__username",
        "team__name",
        "model",
        "job__seconds",
        "job__size",
        "job__status",
        "cost",
        "possible_cost",
        "job__latency_ms",
    )
    return rows.iterator(chunk_size=2000)


def reconciliation_totals(*, first_day: date, last_day: date) -> dict:
    """The ledger's all-time figures and the period's, in one pass over LedgerDay (the period's
    ride along as FILTERed sums): {"all_time": {total, count, pending}, "period": {total,
    count, pending, unknown, to_check}}."""
    in_period = Q(day__gte=first_day, day__lte=last_day)
    figures = LedgerDay.objects.aggregate(
        **ROLLUP_FIGURES,
        period_total=Sum("cost", filter=in_period),
        period_count=Sum("entries", filter=in_period),
        period_pending=Sum("pending_cost", filter=in_period),
        period_unknown=Sum("unknown", filter=in_period),
        period_to_check=Sum("to_check", filter=in_period),
    )
    period = with_zeros(
        {
            "total": figures["period_total"],
            "count": figures["period_count"],
            "pending": figures["period_pending"],
        }
    )
    period["unknown"] = figures["period_unknown"] or 0
    period["to_check"] = figures["period_to_check"] or 0
    all_time = with_zeros({key: figures[key] for key in ROLLUP_FIGURES})
    return {"all_time": all_time, "period": period}


def unknown_outcomes(entries, *, pending_only: bool):
    """Entries whose outcome is unknown, newest first: only those still to check (the
    cost_pending partial index), or every one, checked or not (cost_created, read backwards
    until a page is full)."""
    if pending_only:
        entries = entries.filter(PENDING)
    else:
        entries = entries.filter(outcome=CostEntry.Outcome.UNKNOWN)
    return entries.select_related("user", "job", "reconciled_by").order_by("-created_at", "-pk")


def live_holds_total() -> Decimal:
    """What every job in flight may still cost: the provider reserves it while the job runs."""
    live = Job.objects.filter(status__in=Job.LIVE)
    return (live.aggregate(total=Sum("hold"))["total"] or Decimal(0)).quantize(MICRODOLLAR)


# Budgets as the reviews show them ------------------------------------------------------------


def _status_without_row(budget: Budget, *, label: str, now) -> BudgetStatus:
    """A level with no budget row (no limit): what it spent and holds in the month so far."""
    start = periods.period_start(budget.period, periods.utc_today(now))
    spent = scope_spend(scope=budget.scope, first_day=start)
    live = Job.objects.filter(status__in=Job.LIVE)
    if budget.level == Budget.Level.TEAM:
        live = live.filter(team_id=budget.team_id)
    held = live.aggregate(total=Sum("hold"))["total"] or Decimal(0)
    held = held.quantize(MICRODOLLAR)
    return BudgetStatus(
        limit=None,
        used=spent + held,
        period=budget.period,
        label=label,
        spent=spent,
        held=held,
        budget=budget,
        now=now,
    )


def team_budget_status(*, team: Team, viewer, now=None) -> BudgetStatus:
    """The team's own budget: its limit, spent and held in its period, left and when it resets
    (no limit if staff set none)."""
    now = now or timezone.now()
    budget = Budget.objects.filter(level=Budget.Level.TEAM, team=team).select_related("team")
    budget = budget.first()
    if budget is None:
        budget = Budget(level=Budget.Level.TEAM, team=team, period=periods.MONTH)
        return _status_without_row(budget, label=team.label, now=now)
    return budget_statuses([budget], viewer=viewer, now=now)[0]


def organization_budget_status(*, now=None) -> BudgetStatus:
    """The organization's cap on all spend (no limit if staff set none)."""
    now = now or timezone.now()
    budget = Budget.objects.filter(level=Budget.Level.ORGANIZATION).first()
    if budget is None:
        budget = Budget(level=Budget.Level.ORGANIZATION, period=periods.MONTH)
        return _status_without_row(budget, label="The organization", now=now)
    return budget_statuses([budget], now=now)[0]


@dataclass(frozen=True)
class MemberBudget:
    membership: Membership
    status: BudgetStatus  # limit None: the member has no budget of their own in the team


def member_budget_statuses(*, team: Team, now=None) -> list[MemberBudget]:
    """Each current member's budget in the team (managers included), by username: its limit,
    spent and held in its period, left and when it resets. A member without a budget row has no
    limit of their own (the team's still applies) and is shown with the month's spend.

    Three queries whatever the team's size: the memberships, the budget rows, the members'
    daily roll-ups in their windows, and the live jobs' holds grouped by owner.
    """
    now = now or timezone.now()
    today = periods.utc_today(now)
    memberships = list(
        Membership.objects.filter(team=team).select_related("user").order_by("user__username")
    )
    rows = {
        budget.user_id: budget
        for budget in Budget.objects.filter(level=Budget.Level.MEMBER, team=team)
    }
    budgets = {}
    for membership in memberships:
        budget = rows.get(membership.user_id) or Budget(
            level=Budget.Level.MEMBER, team=team, user=membership.user, period=periods.MONTH
        )
        budget.team, budget.user = team, membership.user
        budgets[membership.user_id] = budget
    if not budgets:
        return []
    windows = Q()
    for budget in budgets.values():
        windows |= Q(scope=budget.scope, day__gte=periods.period_start(budget.period, today))
    spent = dict(
        SpendDay.objects.filter(windows)
        .values("scope")
        .annotate(total=Sum(F("cost") + F("pending")))
        .values_list("scope", "total")
    )
    held = dict(
        Job.objects.filter(team=team, status__in=Job.LIVE, owner_id__in=list(budgets))
        .values("owner_id")
        .annotate(total=Sum("hold"))
        .values_list("owner_id", "total")
    )
    statuses = []
    for membership in memberships:
        budget = budgets[membership.user_id]
        member_spent = (spent.get(budget.scope) or Decimal(0)).quantize(MICRODOLLAR)
        member_held = (held.get(membership.user_id) or Decimal(0)).quantize(MICRODOLLAR)
        status = BudgetStatus(
            limit=budget.limit,
            used=member_spent + member_held,
            period=budget.period,
            label=membership.user.get_username(),
            spent=member_spent,
            held=member_held,
            budget=budget,
            now=now,
        )
        statuses.append(MemberBudget(membership=membership, status=status))
    return statuses
