"""What the studio holds about one person, for their export (jobs/exports.py) and the account
deletion page: their jobs, the ledger entries that name them, their settings, teams, budgets,
API tokens, webhooks and emails. Never another person's: every read filters on the person.

Which jobs are "theirs": the jobs they made. Those they may still see (their personal ones,
and their team ones while they are in the team: the My videos gallery, selectors.space_jobs)
come with their prompt and files. A team video they made for a team they have left stays with
that team, as everywhere else in the studio: its record is listed (when, which model, what it
cost) without its prompt or files, since leaving the team took away their access to them."""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum

from jobs.models import (
    AuditEvent,
    BudgetNotice,
    CostEntry,
    ExternalIdentity,
    Job,
    OutgoingEmail,
    WebhookDelivery,
)

from .accounts import email_is_verified
from .alerts import alert_preferences_for
from .budgets import MICRODOLLAR, budget_statuses_for_user, token_budget_statuses
from .jobs import Space, space_jobs
from .teams import memberships_for_user
from .tokens import api_tokens_for_user


@dataclass(frozen=True)
class OwnJob:
    job: Job
    visible: bool  # they may still see it: its prompt and files are theirs to take


def own_jobs(*, user) -> list[OwnJob]:
    """Every job the user made, oldest first (job_owner_created), each marked with whether they
    may still see it. Rows only: their files are read one at a time when the zip is written."""
    visible = set(space_jobs(space=Space(user=user)).values_list("pk", flat=True))
    jobs = (
        Job.objects.filter(owner=user).select_related("team", "token").order_by("created_at", "pk")
    )
    return [OwnJob(job=job, visible=job.pk in visible) for job in jobs]


def ledger_entries_naming(*, user):
    """The ledger entries in the user's name, oldest first (cost_user_created)."""
    return CostEntry.objects.filter(user=user).select_related("team").order_by("created_at", "pk")


def ledger_total_naming(*, user) -> Decimal:
    total = CostEntry.objects.filter(user=user).aggregate(total=Sum("cost"))["total"]
    return (total or Decimal(0)).quantize(MICRODOLLAR)


def identities_of(*, user):
    return ExternalIdentity.objects.filter(user=user).order_by("created_at")


def emails_to(*, user):
    """The messages the outbox holds for the user (their address, the subject, whether sent)."""
    return OutgoingEmail.objects.filter(user=user).order_by("created_at")


def deliveries_of(*, user):
    """Every webhook delivery of the user's tokens, oldest first."""
    return (
        WebhookDelivery.objects.filter(token__user=user)
        .select_related("token")
        .order_by("created_at")
    )


def budget_notices_for(*, user):
    """The threshold notices of the user's own budgets (personal, in a team)."""
    return BudgetNotice.objects.filter(user=user).select_related("team").order_by("created_at")


def audit_events_about(*, user):
    """The audit trail's events about the user (added to a team, a budget set for them...),
    without who made them: that is another person."""
    return (
        AuditEvent.objects.filter(user=user).select_related("team", "user").order_by("created_at")
    )


def settings_of(*, user) -> dict:
    """Their notification choices, budgets, teams and tokens, read by the selectors that show
    them on their own pages."""
    return {
        "preferences": alert_preferences_for(user),
        "email_verified": email_is_verified(user=user),
        "budgets": budget_statuses_for_user(user=user),
        "token_budgets": token_budget_statuses(user=user),
        "memberships": list(memberships_for_user(user=user)),
        "tokens": list(api_tokens_for_user(user=user)),
    }


@dataclass(frozen=True)
class DeletionSummary:
    """What deleting the account would do, for its confirmation page."""

    personal_videos: int  # personal jobs whose files go
    team_videos: int  # team jobs they made, which stay with their team
    teams: list[str]  # the teams those stay with, by name
    live_jobs: int  # running or storing: deletion waits for them
    queued_jobs: int  # queued: canceled by the deletion
    tokens: int  # live API tokens, which stop working


def deletion_summary(*, user) -> DeletionSummary:
    mine = Job.objects.filter(owner=user, deleted_at__isnull=True)
    team_jobs = mine.filter(team__isnull=False)
    teams = sorted(set(team_jobs.values_list("team__name", flat=True)), key=str.lower)
    return DeletionSummary(
        personal_videos=mine.filter(team__isnull=True).exclude(video="").count(),
        team_videos=team_jobs.exclude(video="").count(),
        teams=teams,
        live_jobs=mine.filter(status__in=[Job.Status.RUNNING, Job.Status.STORING]).count(),
        queued_jobs=mine.filter(status=Job.Status.QUEUED).count(),
        tokens=api_tokens_for_user(user=user).filter(revoked_at__isnull=True).count(),
    )
