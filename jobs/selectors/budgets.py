"""Budgets at every level: what is spent, held and left in each one's current period.

"Spent" is read from SpendDay, the exact daily roll-up of the ledger (pending possible costs
included, to be safe); "held" is what live jobs charged there may still cost, read from
HeldTotal on PostgreSQL.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import F, Q, Sum
from django.utils import timezone

from jobs import periods
from jobs.models import Budget, HeldTotal, Job, SpendDay, Team

# The ledger's precision (decimal_places=6). SQLite adds decimals as floats (6.00 comes back as
# 5.99999999999999), so every sum is brought back to it; PostgreSQL's are exact already.
MICRODOLLAR = Decimal("0.000001")


@dataclass(frozen=True)
class BudgetStatus:
    limit: Decimal | None  # None: no limit
    used: Decimal  # spend in the period (pending possible costs included) plus live holds
    period: str = periods.MONTH
    label: str = "Your personal budget"
    spent: Decimal = Decimal(0)
    held: Decimal = Decimal(0)
    budget: Budget | None = None
    now: dt.datetime | None = None

    WARN_AT = Decimal("0.8")

    @property
    def left(self) -> Decimal:
        return Decimal("Infinity") if self.limit is None else self.limit - self.used

    @property
    def left_or_zero(self) -> Decimal:
        return max(self.left, Decimal(0))

    @property
    def is_near_limit(self) -> bool:
        return self.limit is not None and self.used >= self.limit * self.WARN_AT

    @property
    def percent_used(self) -> int:
        if not self.limit:
            return 100 if self.limit is not None else 0
        return int(self.used * 100 / self.limit)

    @property
    def period_words(self) -> str:
        """ "this month", "this week", "today"."""
        return periods.PERIOD_WORDS[self.period]

    @property
    def resets(self) -> str:
        """ "resets in 3 days, on 1 Jan"."""
        return periods.resets_words(self.period, self.now)


def budget_label(budget: Budget, *, viewer=None) -> str:
    """How a sentence names a budget, for `viewer` (the person reading it)."""
    level = budget.level
    if level == Budget.Level.ORGANIZATION:
        return "The organization"
    if level == Budget.Level.TEAM:
        return budget.team.label
    if level == Budget.Level.MEMBER:
        whose = (
            "Your"
            if viewer is not None and viewer.pk == budget.user_id
            else (f"{budget.user.get_username()}'s")
        )
        return f"{whose} budget in the {budget.team.label}"
    if level == Budget.Level.PERSONAL:
        if viewer is not None and viewer.pk != budget.user_id:
            return f"{budget.user.get_username()}'s personal budget"
        return "Your personal budget"
    return f"API token “{budget.token.name}”"


def _held_filter(budget: Budget) -> Q:
    level = budget.level
    if level == Budget.Level.ORGANIZATION:
        return Q(pk__isnull=False)
    if level == Budget.Level.TEAM:
        return Q(team_id=budget.team_id)
    if level == Budget.Level.MEMBER:
        return Q(team_id=budget.team_id, owner_id=budget.user_id)
    if level == Budget.Level.PERSONAL:
        return Q(team__isnull=True, owner_id=budget.user_id)
    return Q(token_id=budget.token_id)


def budget_usage(budgets: list[Budget], *, now=None) -> dict[int, tuple[Decimal, Decimal]]:
    """Each budget's (spent in its current period, held by live jobs), by budget pk.

    On PostgreSQL, one statement reads both from the roll-ups: spend from SpendDay, holds from
    HeldTotal (kept by a trigger on the jobs table), a few rows per level however many jobs
    are live. One statement is one snapshot: a job that settles meanwhile is seen either still
    held or already spent, never both nor neither. Elsewhere (SQLite) the holds are summed from
    the live jobs, in a statement of their own before the spend's: a job settling between them
    is counted twice (its hold, then its cost), never missed, so a check that reads these can
    only err on the safe side. With the budgets' rows locked (services.budgets.budget_reserve)
    no new hold can appear meanwhile.
    """
    if not budgets:
        return {}
    today = periods.utc_today(now)
    # Raw SQL on purpose: every submit reads this inside its budget lock (bench/budgets.py),
    # and building it with the ORM cost 2 ms of CPU, ten times the statement's own time.
    # Bounded on both sides: a status asked for a past moment (or a row dated ahead by a host
    # whose clock runs fast) counts only the days of that moment's period.
    windows = " OR ".join(["(scope = %s AND day >= %s AND day < %s)"] * len(budgets))
    params: list = []
    for budget in budgets:
        params += [
            budget.scope,
            periods.period_start(budget.period, today),
            periods.period_end(budget.period, today),
        ]
    sql = (
        f"SELECT 'spent', scope, SUM(cost + pending) FROM {SpendDay._meta.db_table}"  # noqa: S608
        f" WHERE {windows} GROUP BY scope"
    )
    postgresql = connection.vendor == "postgresql"
    if postgresql:
        scopes = sorted({b.scope for b in budgets})
        sql += (
            f" UNION ALL SELECT 'held', scope, SUM(held) FROM {HeldTotal._meta.db_table}"  # noqa: S608
            f" WHERE scope IN ({', '.join(['%s'] * len(scopes))}) GROUP BY scope"
        )
        params += scopes
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if postgresql:
        held_by_scope = {scope: total for kind, scope, total in rows if kind == "held"}
        held_by_budget = {b.pk: held_by_scope.get(b.scope) for b in budgets}
    else:
        held_by_budget = _held_of_live_jobs(budgets)
    # Two budgets of one scope cannot exist (unique constraints), so the scope sum is the
    # budget's, within its own window.
    spent_by_scope = {scope: total for kind, scope, total in rows if kind == "spent"}
    return {
        b.pk: (_money(spent_by_scope.get(b.scope)), _money(held_by_budget[b.pk])) for b in budgets
    }


def _money(total) -> Decimal:
    """A sum as the ledger keeps it: PostgreSQL's are exact Decimals; SQLite adds its decimals
    as floats (6.00 comes back as 5.99999999999999), which the quantize brings back."""
    if total is None:
        return Decimal(0)
    if not isinstance(total, Decimal):
        total = Decimal(str(total))
    return total.quantize(MICRODOLLAR)


def _held_of_live_jobs(budgets: list[Budget]) -> dict[int, Decimal | None]:
    """Each budget's holds, summed from the live jobs (where HeldTotal has no trigger)."""
    live = Job.objects.filter(status__in=Job.LIVE)
    if not any(b.level == Budget.Level.ORGANIZATION for b in budgets):
        # Narrow the scan to the rows that can match (the owner and team indexes).
        narrow = Q()
        for budget in budgets:
            narrow |= _held_filter(budget)
        live = live.filter(narrow)
    held = live.aggregate(**{f"b{b.pk}": Sum("hold", filter=_held_filter(b)) for b in budgets})
    return {b.pk: held[f"b{b.pk}"] for b in budgets}


def budget_statuses(budgets: list[Budget], *, viewer=None, now=None) -> list[BudgetStatus]:
    """A status for each budget, in the order given."""
    now = now or timezone.now()
    usage = budget_usage(budgets, now=now)
    statuses = []
    for budget in budgets:
        spent, held = usage[budget.pk]
        statuses.append(budget_status_of(budget, spent=spent, held=held, viewer=viewer, now=now))
    return statuses


def budget_status_of(budget: Budget, *, spent: Decimal, held: Decimal, viewer=None, now):
    """A budget's status from its usage as budget_usage read it."""
    return BudgetStatus(
        limit=budget.limit,
        used=spent + held,
        period=budget.period,
        label=budget_label(budget, viewer=viewer),
        spent=spent,
        held=held,
        budget=budget,
        now=now,
    )


def budgets_applying(*, owner, team: Team | None, token=None) -> list[Budget]:
    """The budget rows a job charged to `team` (None: personal) by `owner` through `token` is
    checked against, in lock order. The personal row comes even for a team job (a submit locks
    it too: services.budgets.budget_reserve)."""
    wanted = Q()
    for fields in budget_levels_applying(owner=owner, team=team, token=token):
        wanted |= Q(**fields)
    rows = Budget.objects.filter(wanted).select_related("team", "user", "token")
    return sorted(rows, key=lambda b: (b.level, b.pk))


def budget_levels_applying(*, owner, team: Team | None, token=None) -> list[dict]:
    """The levels a job charged to `team` by `owner` through `token` is checked against, each as
    the columns (and values) that find its row: the one place that says which rows apply, for
    the query above and for the submit's locking SQL (services.budgets)."""
    levels = [
        {"level": Budget.Level.ORGANIZATION},
        {"level": Budget.Level.PERSONAL, "user_id": owner.pk},
    ]
    if team is not None:
        levels.append({"level": Budget.Level.TEAM, "team_id": team.pk})
        levels.append({"level": Budget.Level.MEMBER, "team_id": team.pk, "user_id": owner.pk})
    if token is not None:
        levels.append({"level": Budget.Level.TOKEN, "token_id": token.pk})
    return levels


def personal_budget(user) -> Budget:
    """The user's personal budget row, or an unsaved one with the studio's default limit."""
    budget = Budget.objects.filter(level=Budget.Level.PERSONAL, user=user).first()
    return budget if budget is not None else _personal_unsaved(user)


def _personal_unsaved(user) -> Budget:
    """The personal budget of someone with no row yet: the studio's default limit. budget_usage
    reads it like a saved one (by its scope)."""
    return Budget(level=Budget.Level.PERSONAL, user=user, limit=settings.DEFAULT_MONTHLY_BUDGET)


def budget_status_for_user(*, user, now=None) -> BudgetStatus:
    """The user's personal budget: spent and held in its period, and what is left."""
    return budget_statuses([personal_budget(user)], viewer=user, now=now)[0]


def holds_for_user(*, user) -> Decimal:
    """What the user's live personal jobs may still cost."""
    live = Job.objects.filter(owner=user, team__isnull=True, status__in=Job.LIVE)
    return live.aggregate(total=Sum("hold"))["total"] or Decimal(0)


def month_start(now=None):
    now = now or timezone.now()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def scope_spend(*, scope: str, first_day: dt.date, last_day: dt.date | None = None) -> Decimal:
    """A scope's spend (pending possible costs included) from `first_day` on (to `last_day`)."""
    days = SpendDay.objects.filter(scope=scope, day__gte=first_day)
    if last_day is not None:
        days = days.filter(day__lte=last_day)
    total = days.aggregate(total=Sum(F("cost") + F("pending")))["total"] or Decimal(0)
    return total.quantize(MICRODOLLAR)


def budgets_for_scopes(scopes: list[str]) -> list[Budget]:
    """The budgets (with a limit) whose spend is rolled up under these scopes."""
    wanted = Q()
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        if kind == "org":
            wanted |= Q(level=Budget.Level.ORGANIZATION)
        elif kind == "team":
            wanted |= Q(level=Budget.Level.TEAM, team_id=rest)
        elif kind == "member":
            team_id, _, user_id = rest.partition(":")
            wanted |= Q(level=Budget.Level.MEMBER, team_id=team_id, user_id=user_id)
        elif kind == "user":
            wanted |= Q(level=Budget.Level.PERSONAL, user_id=rest)
        elif kind == "token":
            wanted |= Q(level=Budget.Level.TOKEN, token_id=rest)
    rows = Budget.objects.filter(wanted, limit__gt=0).select_related("token")
    return sorted(rows, key=lambda b: (b.level, b.pk))


def budget_statuses_for_charge(*, user, team: Team | None, token=None, now=None):
    """The levels a job charged to `team` (None: personal) by `user` is checked against, each
    with a limit, as statuses in lock order: what the form's facts show and the over-budget
    warning reads. The personal level is skipped for a team job, as budget_reserve skips it;
    a personal job always shows the personal level (with the studio's default limit if the
    user has no row yet)."""
    now = now or timezone.now()
    budgets = [
        budget
        for budget in budgets_applying(owner=user, team=team, token=token)
        if budget.limit is not None and budget.level != Budget.Level.PERSONAL
    ]
    statuses = budget_statuses(budgets, viewer=user, now=now)
    if team is None:
        personal = budget_status_for_user(user=user, now=now)
        # Lock order: organization, (team, member), personal, token.
        before = [s for s in statuses if s.budget.level < Budget.Level.PERSONAL]
        after = [s for s in statuses if s.budget.level > Budget.Level.PERSONAL]
        statuses = [*before, personal, *after]
    return statuses


def budget_statuses_for_user(*, user, now=None) -> list[BudgetStatus]:
    """The budgets a person sees as their own: the personal one first (always, with the
    studio's default limit if they have no row yet), then for each team they belong to (by
    name) the team's budget and their own budget in it, where a limit is set. Never another
    member's budget, nor a team the user is not in.

    Two queries (every full page asks, for the header's warnings): the rows, with the teams
    the user is in as a subquery, then what each has spent and held (budget_usage)."""
    from jobs.models import Membership

    now = now or timezone.now()
    teams = Membership.objects.filter(user=user).values("team_id")
    rows = Budget.objects.filter(
        Q(level=Budget.Level.PERSONAL, user=user)
        | Q(level=Budget.Level.TEAM, team_id__in=teams, limit__isnull=False)
        | Q(level=Budget.Level.MEMBER, team_id__in=teams, user=user, limit__isnull=False)
    ).select_related("team")
    personal, team_rows = None, []
    for budget in rows:
        if budget.level == Budget.Level.PERSONAL:
            personal = budget
        else:
            team_rows.append(budget)
    if personal is None:
        personal = _personal_unsaved(user)
    team_rows.sort(key=lambda b: (b.team.name.lower(), b.level))
    return budget_statuses([personal, *team_rows], viewer=user, now=now)


def token_budget_statuses(*, user, now=None) -> dict:
    """The budgets of the user's own tokens that have one, as statuses keyed by token id."""
    rows = list(
        Budget.objects.filter(level=Budget.Level.TOKEN, token__user=user).select_related("token")
    )
    return {
        status.budget.token_id: status for status in budget_statuses(rows, viewer=user, now=now)
    }
