"""The cost ledger: one entry per job that reached the provider, written in the same transaction
as the conditional UPDATE that ends the job's call."""

from decimal import Decimal

from django.utils import timezone

from jobs.models import CostEntry, Job


def ledger_record(*, job: Job, outcome: str, cost: Decimal = Decimal(0), possible_cost=None):
    """Write the job's entry. The unique constraint on `job` makes a second one fail loudly."""
    pending = outcome == CostEntry.Outcome.UNKNOWN
    return CostEntry.objects.create(
        job=job,
        user_id=job.owner_id,
        model=job.model,
        outcome=outcome,
        cost=cost,
        possible_cost=possible_cost,
        reconciliation=CostEntry.Reconciliation.PENDING if pending else "",
    )


def ledger_reconcile(*, entry: CostEntry, charged: bool, by, amount: Decimal | None = None) -> bool:
    """An admin's verdict on an unknown outcome, after checking the provider's logs.

    One conditional UPDATE on the still-pending entry: charged sets the cost to `amount` (what
    the provider's logs show) or, without one, to the possible cost; not charged leaves it at 0.
    The job shows the same figure.
    """
    if not charged:
        cost = Decimal(0)
    elif amount is not None:
        cost = amount
    else:
        cost = entry.possible_cost or Decimal(0)
    verdict = CostEntry.Reconciliation.CHARGED if charged else CostEntry.Reconciliation.NOT_CHARGED
    done = CostEntry.objects.filter(
        pk=entry.pk, reconciliation=CostEntry.Reconciliation.PENDING
    ).update(reconciliation=verdict, cost=cost, reconciled_by=by, reconciled_at=timezone.now())
    if done:
        Job.objects.filter(pk=entry.job_id).update(cost=cost)
    return bool(done)
