"""What the Prometheus scrape reads from the database (videostudio/metrics.py): studio-wide
figures for the people who run it, never a person's own data, so nothing here is scoped to a
viewer. Each read is one indexed query (the index is named beside it), the team budgets three;
a scrape makes nine.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Min, Sum
from django.utils import timezone

from jobs.models import Budget, CostEntry, Job, OutgoingEmail, Team, WebhookDelivery

from .budgets import budget_usage


@dataclass(frozen=True)
class TeamBudget:
    team_id: str
    limit: Decimal
    period: str
    spent: Decimal  # in the current period, pending possible costs included
    held: Decimal  # what the team's live jobs may still cost

    @property
    def remaining(self) -> Decimal:
        return self.limit - self.spent - self.held


def live_jobs_by_state() -> dict[str, int]:
    """Queued, running and storing jobs: a count of the partial index job_live_enqueued, which
    holds only live jobs, so it costs the same with a million finished jobs as with none."""
    counts = dict.fromkeys(sorted(Job.LIVE), 0)
    rows = (
        Job.objects.filter(status__in=Job.LIVE)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts.update(dict(rows))
    return counts


def oldest_queued_age_seconds(*, now=None) -> float:
    """Seconds since the oldest job still queued was submitted (0 with none); a job waiting to
    retry after a 429 counts, as it is waiting too. One row of job_status_created."""
    oldest = Job.objects.filter(status=Job.Status.QUEUED).aggregate(at=Min("created_at"))["at"]
    if oldest is None:
        return 0.0
    return max(0.0, ((now or timezone.now()) - oldest).total_seconds())


def unknown_outcomes_pending() -> tuple[int, Decimal]:
    """Unknown-outcome jobs still waiting for an admin's reconciliation, and the most they may
    have cost (the partial index cost_pending)."""
    row = CostEntry.objects.filter(reconciliation=CostEntry.Reconciliation.PENDING).aggregate(
        n=Count("pk"), possible=Sum("possible_cost")
    )
    return row["n"], row["possible"] or Decimal(0)


def emails_pending() -> int:
    """Emails queued and not yet sent or given up (the partial index outgoingemail_due)."""
    return OutgoingEmail.objects.filter(status=OutgoingEmail.Status.PENDING).count()


def webhooks_pending_by_kind() -> dict[str, int]:
    """Webhook deliveries waiting or being sent, by kind (the partial index
    webhookdelivery_live)."""
    counts = dict.fromkeys(WebhookDelivery.Kind.values, 0)
    rows = (
        WebhookDelivery.objects.filter(
            status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.SENDING]
        )
        .values_list("kind")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts.update(dict(rows))
    return counts


def team_budgets(*, now=None) -> list[TeamBudget]:
    """Every team budget with a limit, with what is spent and held in its current period: the
    budgets (budget_one_per_team), then budgets.budget_usage's two queries (live jobs through
    job_live_enqueued; at most 31 SpendDay rows a team through spendday_scope_day)."""
    budgets = list(
        Budget.objects.filter(level=Budget.Level.TEAM, limit__isnull=False).order_by("team_id")
    )
    usage = budget_usage(budgets, now=now)
    return [
        TeamBudget(
            team_id=str(budget.team_id),
            limit=budget.limit,
            period=budget.period,
            spent=usage[budget.pk][0],
            held=usage[budget.pk][1],
        )
        for budget in budgets
    ]


def team_names() -> dict[str, str]:
    """Each team's id and name, for the info series that turns an id label into a name."""
    return {str(pk): name for pk, name in Team.objects.values_list("pk", "name")}
