"""Budgets at every level, the daily roll-up of the ledger they are checked against, and the
notices when one is crossed."""

from django.conf import settings
from django.db import models

from .teams import Team


class Budget(models.Model):
    """A spending limit in USD at one level, over a calendar period in UTC. No row, or no limit,
    means unlimited.

    Levels, in the order a submit locks them (so that simultaneous submits never deadlock):
    the organization (one row), a team, a member within a team (set by its managers), a
    user's personal space, an API token. A team job is checked against the organization, its
    team, the member's budget in it and its token; a personal job against the organization,
    the personal budget and its token (services/budgets.py).
    """

    class Level(models.IntegerChoices):
        ORGANIZATION = 1, "organization"
        TEAM = 2, "team"
        MEMBER = 3, "member in a team"
        PERSONAL = 4, "personal"
        TOKEN = 5, "API token"

    class Period(models.TextChoices):
        # The same windows ImageRouter uses for its own key limits.
        DAY = "day", "day"
        WEEK = "week", "ISO week"
        MONTH = "month", "month"

    level = models.PositiveSmallIntegerField(choices=Level.choices, default=Level.PERSONAL)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="budgets"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="budgets",
    )
    token = models.ForeignKey(
        "ApiToken", null=True, blank=True, on_delete=models.CASCADE, related_name="budgets"
    )
    limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="USD per period (UTC). Empty means no limit.",
    )
    period = models.CharField(max_length=5, choices=Period.choices, default=Period.MONTH)
    # Written only on SQLite, where a submit's UPDATE of its budget rows takes the database's
    # write lock; on PostgreSQL the submit locks the rows with SELECT ... FOR NO KEY UPDATE.
    # Either way two submits can never both fit into the same remaining budget.
    locked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["level"], condition=models.Q(level=1), name="budget_one_organization"
            ),
            models.UniqueConstraint(
                fields=["team"], condition=models.Q(level=2), name="budget_one_per_team"
            ),
            models.UniqueConstraint(
                fields=["team", "user"], condition=models.Q(level=3), name="budget_one_per_member"
            ),
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(level=4), name="budget_one_per_user"
            ),
            models.UniqueConstraint(
                fields=["token"], condition=models.Q(level=5), name="budget_one_per_token"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(level=1, team__isnull=True, user__isnull=True, token__isnull=True)
                    | models.Q(level=2, team__isnull=False, user__isnull=True, token__isnull=True)
                    | models.Q(level=3, team__isnull=False, user__isnull=False, token__isnull=True)
                    | models.Q(level=4, team__isnull=True, user__isnull=False, token__isnull=True)
                    | models.Q(level=5, team__isnull=True, user__isnull=True, token__isnull=False)
                ),
                name="budget_level_names_its_subject",
            ),
        ]

    def __str__(self):
        limit = f"${self.limit} a {self.period}" if self.limit is not None else "no limit"
        return f"{self.get_level_display()} budget: {limit}"

    @property
    def scope(self) -> str:
        return spend_scope(self.level, self.team_id, self.user_id, self.token_id)


def spend_scope(level: int, team_id=None, user_id=None, token_id=None) -> str:
    """The key a level's spend is rolled up under in SpendDay (and its budget is found by)."""
    if level == Budget.Level.ORGANIZATION:
        return "org"
    if level == Budget.Level.TEAM:
        return f"team:{team_id}"
    if level == Budget.Level.MEMBER:
        return f"member:{team_id}:{user_id}"
    if level == Budget.Level.PERSONAL:
        return f"user:{user_id}"
    return f"token:{token_id}"


class SpendDay(models.Model):
    """The ledger rolled up per budget level and UTC day, kept exact by the transactions that
    write the ledger (services/ledger.py): a submit reads a level's spend in its period from at
    most 31 of these rows instead of summing the ledger.

    `cost` is the sum of the day's entries' costs; `pending` the possible costs still to check.
    """

    scope = models.CharField(max_length=120)  # spend_scope(): "org", "team:<id>", ...
    day = models.DateField()
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    pending = models.DecimalField(max_digits=14, decimal_places=6, default=0)

    class Meta:
        constraints = [
            # A level's spend in a period: the rows of one scope from the period's first day.
            models.UniqueConstraint(fields=["scope", "day"], name="spendday_scope_day"),
        ]

    def __str__(self):
        return f"{self.scope} {self.day}: {self.cost} (+{self.pending} to check)"


class HeldTotal(models.Model):
    """What live jobs hold at one budget level, in one of a few stripes, kept exact on
    PostgreSQL by a trigger on the jobs table (migration 0020): every insert, update or delete
    of a job that changes what it holds, or where, adds the difference here in the same
    transaction, whichever code (or SQL) made it. A submit reads a level's holds from these
    rows (selectors.budgets.budget_usage) instead of summing every live job while it holds the
    organization's budget row (BENCHMARKS.md, submits).

    A level's holds are the sum of its scope's stripes. The stripe is the job's owner's id
    modulo HELD_STRIPES, so settlements of different people's jobs rarely wait for each other
    on the organization's or a team's row, and one person's jobs always take the same stripe
    (the rows a transaction updates are then always taken in the same order). On SQLite
    (no trigger) the holds are summed from the live jobs as before.
    """

    STRIPES = 16

    scope = models.CharField(max_length=120)  # spend_scope(): "org", "team:<id>", ...
    stripe = models.PositiveSmallIntegerField()
    held = models.DecimalField(max_digits=14, decimal_places=6, default=0)

    class Meta:
        constraints = [
            # The trigger's upsert, and a level's holds: the rows of one scope.
            models.UniqueConstraint(fields=["scope", "stripe"], name="heldtotal_scope_stripe"),
        ]

    def __str__(self):
        return f"{self.scope} stripe {self.stripe}: {self.held} held"


class BudgetShare(models.Model):
    """Room set aside from the organization's limit for one stripe of people (the owner's id
    modulo STRIPES) in one period of the organization's budget (services/budget_shares.py).

    A submit takes its job's worst case from its stripe's room in one statement, which locks
    this row, not the organization's: submits of different stripes never wait for each other
    there. Rooms grow only under the organization's row lock (topped up when a submit finds
    too little, taken back to nothing when the organization runs short) and are dropped when
    its limit or period changes. A share is good only for the limit and period it was set
    under (`limit`, `period`, `period_start`).
    """

    STRIPES = 32

    stripe = models.PositiveSmallIntegerField()
    period_start = models.DateField()
    period = models.CharField(max_length=5, choices=Budget.Period.choices)
    limit = models.DecimalField(max_digits=12, decimal_places=2)  # the organization's, then
    room = models.DecimalField(max_digits=14, decimal_places=6, default=0)

    class Meta:
        constraints = [
            # A submit's share: one row per stripe and period.
            models.UniqueConstraint(
                fields=["stripe", "period_start"], name="budgetshare_stripe_period"
            ),
        ]

    def __str__(self):
        return f"stripe {self.stripe} from {self.period_start}: {self.room} of {self.limit}"


class BudgetNotice(models.Model):
    """A budget crossed 50%, 80% or 100% of its limit in one period: one row per budget, period
    and threshold (a unique constraint makes racing settlements write one). The app shows it to
    the people concerned; delivery by email and webhook reads these rows."""

    THRESHOLDS = (50, 80, 100)

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="notices")
    # Copied from the budget, so the people concerned are found without a join.
    level = models.PositiveSmallIntegerField(choices=Budget.Level.choices)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    period = models.CharField(max_length=5, choices=Budget.Period.choices)
    period_start = models.DateField()
    threshold = models.PositiveSmallIntegerField()  # percent of the limit
    limit = models.DecimalField(max_digits=12, decimal_places=2)
    spent = models.DecimalField(max_digits=14, decimal_places=6)  # when it was crossed
    created_at = models.DateTimeField(auto_now_add=True)
    # When its emails were queued to the people concerned (services.alerts); None: not yet.
    # Claimed by a conditional UPDATE, so racing deliverers (the settlement's on-commit hook and
    # the sweeper) queue them once; the outbox keys make a repeat harmless anyway.
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "period_start", "threshold"], name="budgetnotice_once"
            ),
        ]
        indexes = [
            # A person's notices, a team's notices (the managers' review).
            models.Index(fields=["user", "-created_at"], name="budgetnotice_user"),
            models.Index(fields=["team", "-created_at"], name="budgetnotice_team"),
            # The sweeper's question: which notices have not been emailed yet? (a few at most)
            models.Index(
                fields=["created_at"],
                condition=models.Q(emailed_at__isnull=True),
                name="budgetnotice_not_emailed",
            ),
        ]

    def __str__(self):
        return f"{self.threshold}% of {self.budget} on {self.period_start}"
