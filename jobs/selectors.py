"""Every read. Anything that returns jobs is scoped to the person asking."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, Sum
from django.shortcuts import get_object_or_404
from django.utils import timezone

from .models import Budget, CostEntry, Job, VideoModel

UNSET = object()


def job_get_for_user(*, user, job_id) -> Job:
    """The job, if `user` owns it or is staff; otherwise 404, so nobody learns it exists."""
    jobs = Job.objects.filter(deleted_at__isnull=True)
    if not user.is_staff:
        jobs = jobs.filter(owner=user)
    return get_object_or_404(jobs, pk=job_id)


def job_get_for_owner(*, user, job_id) -> Job:
    """The job, only for its owner: for actions that spend or destroy (cancel, retry, delete).
    Staff may look at anyone's job, but not spend money or delete work in their name."""
    return get_object_or_404(Job.objects.filter(deleted_at__isnull=True, owner=user), pk=job_id)


def job_list_for_user(*, user):
    return Job.objects.filter(owner=user, deleted_at__isnull=True).order_by("-created_at")


def spend_total_for_user(*, user) -> Decimal:
    """What the user's jobs cost, deleted ones included: deleting a video does not refund it."""
    total = Job.objects.filter(owner=user).aggregate(total=Sum("cost"))["total"]
    return total or Decimal(0)


def catalog_models():
    return VideoModel.objects.order_by("price_max", "id")


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
    return (totals["cost"] or Decimal(0)) + (totals["pending"] or Decimal(0))


def holds_for_user(*, user) -> Decimal:
    """What the user's live jobs may still cost."""
    live = Job.objects.filter(owner=user, status__in=Job.LIVE)
    return live.aggregate(total=Sum("hold"))["total"] or Decimal(0)
