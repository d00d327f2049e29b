"""A person's monthly budget: what is spent, held and left this calendar month (UTC)."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from jobs.models import Budget, CostEntry, Job

UNSET = object()
# The ledger's precision (decimal_places=6). SQLite adds decimals as floats (6.00 comes back as
# 5.99999999999999), so every sum is brought back to it; PostgreSQL's are exact already.
MICRODOLLAR = Decimal("0.000001")


@dataclass(frozen=True)
class BudgetStatus:
    limit: Decimal | None  # None: no limit
    used: Decimal  # this month's spend (pending possible costs included) plus live holds

    WARN_AT = Decimal("0.8")

    @property
    def left(self) -> Decimal:
        return Decimal("Infinity") if self.limit is None else self.limit - self.used

    @property
    def is_near_limit(self) -> bool:
        return self.limit is not None and self.used >= self.limit * self.WARN_AT

    @property
    def percent_used(self) -> int:
        if not self.limit:
            return 100 if self.limit is not None else 0
        return int(self.used * 100 / self.limit)


def budget_status_for_user(*, user, monthly_limit=UNSET) -> BudgetStatus:
    """How much of this month's budget is used or held. `monthly_limit` saves a query when the
    caller has just read it."""
    if monthly_limit is UNSET:
        budget = Budget.objects.filter(user=user).values_list("monthly_limit", flat=True).first()
        monthly_limit = budget if budget is not None else settings.DEFAULT_MONTHLY_BUDGET
    used = month_spend_for_user(user=user) + holds_for_user(user=user)
    return BudgetStatus(limit=monthly_limit, used=used)


def month_start(now=None):
    now = now or timezone.now()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_spend_for_user(*, user, now=None) -> Decimal:
    """This calendar month's spend (UTC), counting unreconciled possible costs, to be safe."""
    entries = CostEntry.objects.filter(user=user, created_at__gte=month_start(now))
    totals = entries.aggregate(
        cost=Sum("cost"),
        pending=Sum("possible_cost", filter=Q(reconciliation=CostEntry.Reconciliation.PENDING)),
    )
    return ((totals["cost"] or Decimal(0)) + (totals["pending"] or Decimal(0))).quantize(
        MICRODOLLAR
    )


def holds_for_user(*, user) -> Decimal:
    """What the user's live jobs may still cost."""
    live = Job.objects.filter(owner=user, status__in=Job.LIVE)
    return live.aggregate(total=Sum("hold"))["total"] or Decimal(0)
