"""The ledger rolled up for the cost reviews, kept exact by the transactions that write the ledger
(services/ledger.py and services/account_deletion.py).

Two tables, because one with every dimension (day, user, team, model) would not be small: with
10 M entries over a year from 1,000 people it holds about half as many rows as the ledger (each
person uses a few models each day), and a year's review would still add up millions of rows.
Each table drops the dimension its tables never group by:

- LedgerDay: per UTC day, team and model, for the tables by day, by model and by team, every
  total, the drill-downs by model and by team, and reconciliation (at most days x teams x
  models rows, about 186,000 for a year of 50 teams and 10 models);
- LedgerUserSpan: per user and team, per UTC day and per calendar month (UTC), for the tables
  by user and by member and the drill-down by user: a year reads 12 month rows and at most 60
  day rows (the period's first and last partial months) per person and team.

Their columns are the review's figures: `cost` the sum of the entries' costs, `entries` their
number, `pending_cost` the possible costs still to check; LedgerDay also counts the unknown
outcomes and those still to check, for reconciliation.
"""

from django.conf import settings
from django.db import models

from .teams import Team


class LedgerDay(models.Model):
    """The ledger per UTC day, team charged (None: a personal space) and model."""

    day = models.DateField()
    team = models.ForeignKey(Team, null=True, on_delete=models.PROTECT, related_name="+")
    model = models.CharField(max_length=200)
    cost = models.DecimalField(max_digits=16, decimal_places=6, default=0)
    entries = models.BigIntegerField(default=0)
    pending_cost = models.DecimalField(max_digits=16, decimal_places=6, default=0)
    unknown = models.BigIntegerField(default=0)  # entries whose outcome is unknown
    to_check = models.BigIntegerField(default=0)  # of those, still pending

    class Meta:
        constraints = [
            # The upsert's conflict target (a personal space is one key, not one per write),
            # and the staff review's period: a range of days.
            models.UniqueConstraint(
                fields=["day", "team", "model"],
                name="ledgerday_key",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            # A team's review: its days, models and totals.
            models.Index(fields=["team", "day"], name="ledgerday_team"),
        ]

    def __str__(self):
        return f"{self.day} {self.team_id or 'personal'} {self.model}: {self.cost} ({self.entries})"


class LedgerUserSpan(models.Model):
    """The ledger per user (None: people who deleted their accounts) and team charged (None: a
    personal space), over one UTC day and, again, over its calendar month."""

    class Span(models.TextChoices):
        DAY = "day", "day"
        MONTH = "month", "month"

    span = models.CharField(max_length=5, choices=Span.choices)
    day = models.DateField()  # the day, or the month's first day
    # SET_NULL is a safety net only: services.account_deletion moves a person's rows to the
    # deleted accounts' rows first, adding them up, as the unique key requires.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(Team, null=True, on_delete=models.PROTECT, related_name="+")
    cost = models.DecimalField(max_digits=16, decimal_places=6, default=0)
    entries = models.BigIntegerField(default=0)
    pending_cost = models.DecimalField(max_digits=16, decimal_places=6, default=0)

    class Meta:
        constraints = [
            # The upsert's conflict target, and the staff review's period: a span's range of
            # days.
            models.UniqueConstraint(
                fields=["span", "day", "user", "team"],
                name="ledgeruserspan_key",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            # A team's review by member, and a person's drill-down.
            models.Index(fields=["team", "span", "day"], name="ledgeruserspan_team"),
            models.Index(fields=["user", "span", "day"], name="ledgeruserspan_user"),
        ]

    def __str__(self):
        return f"{self.span} {self.day} {self.user_id} {self.team_id}: {self.cost}"
