"""Which jobs retention deletes, and when: the studio's RETENTION_DAYS, or the retention of the
team a job is charged to (Team.retention_days: empty follows the studio, 0 keeps for ever).

A job's files expire `days` after it was created, unless it is starred. Expiry is derived, never
stored, so a changed setting applies to every job at once; these queries turn it into SQL, one
condition per retention in force (the studio's, and each team's own), on the job_may_expire
index.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from jobs.models import Job, Membership, Team


@dataclass(frozen=True)
class Retention:
    """A group of jobs that share one retention: `days`, and which jobs (`jobs`, a Q)."""

    days: int
    jobs: Q


def retentions() -> list[Retention]:
    """Every retention in force, each with the jobs it applies to. Keep-for-ever groups are left
    out. One query (the teams with their own retention: a handful)."""
    own = list(
        Team.objects.filter(retention_days__isnull=False).values_list("pk", "retention_days")
    )
    groups = []
    if settings.RETENTION_DAYS is not None:
        groups.append(
            Retention(
                days=settings.RETENTION_DAYS,
                jobs=Q(team__isnull=True) | Q(team__retention_days__isnull=True),
            )
        )
    groups.extend(Retention(days=days, jobs=Q(team_id=pk)) for pk, days in own if days)
    return groups


def may_expire() -> Q:
    """Jobs whose files retention may still delete: finished, with a file, not starred, not
    expired and not deleted. The same rule as Job.expires_at."""
    has_files = ~Q(video="") | ~Q(poster="") | ~Q(input_image="")
    return (
        Q(
            status__in=Job.TERMINAL,
            deleted_at__isnull=True,
            expired_at__isnull=True,
            starred_at__isnull=True,
        )
        & has_files
    )


def expiring_before(moment: datetime, *, extra: Callable[[int], Q] | None = None) -> Q:
    """Jobs that may expire and whose expiry (created_at + days) comes before `moment`.
    `extra(days)` adds a condition per retention group (the warnings' "not warned for these
    days yet"). Matches nothing when every video is kept for ever."""
    condition = Q(pk__in=[])
    for group in retentions():
        part = group.jobs & Q(created_at__lt=moment - timedelta(days=group.days))
        if extra is not None:
            part &= extra(group.days)
        condition |= part
    return may_expire() & condition


def jobs_due_to_expire(*, now=None, limit: int):
    """The ids of the jobs whose files are due for deletion now, oldest first (the sweeper)."""
    now = now or timezone.now()
    due = Job.objects.filter(expiring_before(now)).order_by("created_at")
    return list(due.values_list("pk", flat=True)[:limit])


def warning_horizon(now=None) -> datetime:
    return (now or timezone.now()) + timedelta(days=settings.EXPIRY_WARNING_DAYS)


def jobs_to_warn(*, now=None):
    """Jobs that expire within EXPIRY_WARNING_DAYS and whose owner has not been warned for the
    retention now in force (a changed retention, or a star taken off, warns again), with their
    owners and teams, by owner. Only those their owner may still see: a video made for a team
    the owner has left stays with the team, and its maker is not told."""
    now = now or timezone.now()

    def not_warned(days: int) -> Q:
        # Not expired yet (the sweeper is about to delete those), and not warned for `days`.
        not_due = Q(created_at__gte=now - timedelta(days=days))
        return not_due & (Q(expiry_warned_days__isnull=True) | ~Q(expiry_warned_days=days))

    owner_in_team = Membership.objects.filter(
        team_id=OuterRef("team_id"), user_id=OuterRef("owner_id")
    )
    jobs = Job.objects.filter(expiring_before(warning_horizon(now), extra=not_warned)).filter(
        Q(team__isnull=True) | Q(Exists(owner_in_team))
    )
    return jobs.select_related("owner", "team").order_by("owner_id", "created_at")


def still_to_warn(job: Job) -> Q:
    """The warning's claim on one job: still expiring, and not warned for its retention."""
    days = job.retention_days
    return may_expire() & (Q(expiry_warned_days__isnull=True) | ~Q(expiry_warned_days=days))
