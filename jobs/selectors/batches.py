"""Reads of batches for the person asking: the batch (seen by exactly those who see its jobs),
its rows with every attempt of each, and its progress and cost so far."""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q
from django.shortcuts import get_object_or_404

from jobs.models import Job, JobGroup, Membership


def _visible_batches(user):
    """A batch's jobs are all charged to one place by one owner (JobGroup), so the batch is seen
    as they are (jobs.visible_to): its owner while it is personal, the team's current members,
    and staff."""
    batches = JobGroup.objects.filter(kind=JobGroup.Kind.BATCH)
    if user.is_staff:
        return batches
    teams = Membership.objects.filter(user=user).values("team_id")
    return batches.filter(Q(team__isnull=True, owner=user) | Q(team_id__in=teams))


def batch_get_for_user(*, user, batch_id) -> JobGroup:
    """The batch, if `user` may see it; otherwise 404, so nobody learns it exists."""
    return get_object_or_404(_visible_batches(user).select_related("owner", "team"), pk=batch_id)


def batch_get_for_owner(*, user, batch_id) -> JobGroup:
    """The batch, only for its owner while they may still see it: retrying spends in their name.
    Staff and teammates may look, not act."""
    user_batches = _visible_batches(user).filter(owner=user)
    if user.is_staff:  # staff see every batch, but act only on their own
        teams = Membership.objects.filter(user=user).values("team_id")
        user_batches = user_batches.filter(Q(team__isnull=True) | Q(team_id__in=teams))
    return get_object_or_404(user_batches.select_related("owner", "team"), pk=batch_id)


@dataclass(frozen=True)
class BatchRowAttempts:
    """One row of a batch: its first job and every retry of it, oldest first."""

    position: int
    attempts: tuple[Job, ...]

    @property
    def number(self) -> int:
        return self.position + 1

    @property
    def latest(self) -> Job:
        return self.attempts[-1]

    @property
    def may_retry(self) -> bool:
        """Its latest attempt failed and is still there to retry."""
        return self.latest.status == Job.Status.FAILED and self.latest.deleted_at is None


def batch_rows(*, batch: JobGroup) -> list[BatchRowAttempts]:
    """The batch's rows in order, each with its attempts: one query on the job_group_position
    index (at most 100 rows and their retries)."""
    jobs = Job.objects.filter(group=batch).order_by("group_position", "created_at", "pk")
    rows: dict[int, list[Job]] = {}
    for job in jobs:
        rows.setdefault(job.group_position, []).append(job)
    return [BatchRowAttempts(position=p, attempts=tuple(a)) for p, a in rows.items()]


@dataclass(frozen=True)
class BatchProgress:
    rows: int
    done: int  # rows whose latest attempt succeeded
    running: int  # generating or storing
    queued: int
    failed: int
    canceled: int
    cost: Decimal  # recorded for every attempt so far, failed ones' included
    possible: Decimal  # failed attempts that may have been charged, not yet reconciled
    held: Decimal  # the most the rows still to finish may cost

    @property
    def finished(self) -> bool:
        return self.running == 0 and self.queued == 0

    @property
    def percent(self) -> int:
        return (
            round(100 * (self.done + self.failed + self.canceled) / self.rows) if self.rows else 0
        )


def batch_progress(rows: list[BatchRowAttempts]) -> BatchProgress:
    """Where the batch stands, counted on each row's latest attempt; its cost on every attempt."""
    latest = [row.latest.status for row in rows]
    attempts = [job for row in rows for job in row.attempts]
    return BatchProgress(
        rows=len(rows),
        done=latest.count(Job.Status.SUCCEEDED),
        running=latest.count(Job.Status.RUNNING) + latest.count(Job.Status.STORING),
        queued=latest.count(Job.Status.QUEUED),
        failed=latest.count(Job.Status.FAILED),
        canceled=latest.count(Job.Status.CANCELED),
        cost=sum((job.cost for job in attempts if job.cost is not None), Decimal(0)),
        possible=sum(
            (
                job.possible_cost
                for job in attempts
                if job.outcome_unknown and job.cost is None and job.possible_cost is not None
            ),
            Decimal(0),
        ),
        held=sum((job.hold for job in attempts if job.status in Job.LIVE), Decimal(0)),
    )
