"""Budgets: estimates, holds placed at submit, and the record of every budget change."""

from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs import selectors
from jobs.models import Budget, BudgetChange, VideoModel

from .limits import SubmitRefusedError


class OverBudgetError(SubmitRefusedError):
    def __init__(self, *, estimate: Decimal, left: Decimal):
        self.estimate = estimate
        self.left = max(left, Decimal(0))
        super().__init__(
            f"This video could cost up to ${estimate:.2f}; you have ${self.left:.2f} left this month."
        )


def estimate_for(model_id: str) -> Decimal:
    """The most a job on this model can cost: the catalog's top price (0 for an unknown model).

    The provider prices per video at its top settings, so the range's maximum bounds every
    duration and size the studio lets a person choose.
    """
    top = VideoModel.objects.filter(pk=model_id).values_list("price_max", flat=True).first()
    return top if top is not None else Decimal(0)


def budget_for(user) -> Budget:
    budget, _ = Budget.objects.get_or_create(
        user=user, defaults={"monthly_limit": settings.DEFAULT_MONTHLY_BUDGET}
    )
    return budget


def budget_reserve(*, user, estimate: Decimal) -> None:
    """Check that `estimate` fits, holding the user's budget row until the caller's transaction
    ends. Must run inside transaction.atomic(), before the job (and its hold) is saved.

    1. Touch the budget row with an UPDATE: it locks the row (PostgreSQL) or the database
       (SQLite), so concurrent submits for one user run this check one at a time.
    2. Sum this month's spend (pending possible costs included) and the holds of live jobs.
    3. Refuse if spend + holds + estimate exceeds the limit. The caller saves the job with
       `hold=estimate`, which the next submit sees once this transaction commits.
    """
    budget = budget_for(user)
    Budget.objects.filter(pk=budget.pk).update(locked_at=timezone.now())
    budget.refresh_from_db(fields=["monthly_limit"])
    if budget.monthly_limit is None:
        return
    status = selectors.budget_status_for_user(user=user, monthly_limit=budget.monthly_limit)
    if estimate > status.left:
        raise OverBudgetError(estimate=estimate, left=status.left)


@transaction.atomic
def budget_set(*, user, monthly_limit: Decimal | None, changed_by) -> Budget:
    """Set a user's monthly limit (None for no limit) and record who changed it from what."""
    budget = budget_for(user)
    old = budget.monthly_limit
    if old != monthly_limit:
        Budget.objects.filter(pk=budget.pk).update(monthly_limit=monthly_limit)
        BudgetChange.objects.create(
            user=user, changed_by=changed_by, old_limit=old, new_limit=monthly_limit
        )
        budget.monthly_limit = monthly_limit
    return budget
