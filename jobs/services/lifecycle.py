"""What a person does with a job: create, cancel, retry, delete."""

import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs import metrics
from jobs.models import Job, JobGroup

from .budget_shares import room_ensure
from .budgets import budget_reserve, estimate_for
from .files import job_files_delete
from .limits import (
    active_jobs_check,
    charge_check,
    owner_lock,
    storage_quota_check,
    submit_rate_check,
)
from .messages import run_message_send_on_commit
from .queue import queue_round_next
from .webhooks import job_webhook_record

logger = logging.getLogger(__name__)


def job_create(
    *,
    owner,
    prompt,
    model,
    size,
    seconds,
    response_format,
    image=None,
    team=None,
    token=None,
    webhook_url: str = "",
    api_base_url: str = "",
    group=None,
    group_position: int | None = None,
) -> Job:
    """Save a new job charged to `team` (None: the owner's personal space), with a hold at every
    budget level that applies, and enqueue it once the row is committed (so the worker can see
    it). Raises a SubmitRefusedError, and saves nothing, when refused.

    1. Check the owner may charge there (ChargeRefusedError: not a member, or a team is
       required), may use the model there (ModelUnavailableError: hidden, staff-only, not
       allowed for the team, or gone from the catalog), that the team's storage is not full
       (StorageQuotaError), and count the submit against their per-minute rate
       (SubmitRateLimitedError).
    2. In one transaction: lock the owner's row (FOR NO KEY UPDATE: their account's deletion,
       which locks it FOR UPDATE, goes first or waits; a submit that finds it gone gets
       AccountGoneError rather than a broken reference), and under it check the cap on queued
       and running jobs (TooManyActiveJobsError) and take the job's turn in the fair queue
       (queue.queue_round_next): both need only the owner's lock, so they come before the
       budget rows', which every submit in the studio waits for.
    3. Lock the budget rows that apply in their fixed order and check the estimate fits each
       (OverBudgetError names the level that is short).
    4. Save the job with its hold (and, from the API, where its webhook goes), its turn, its
       input image with its size (stored_bytes), and send a generate message after commit.
       Saving it adds its hold to HeldTotal (the jobs table's trigger), which the next
       submit's check reads once this one commits. If Redis is away then, the job stays saved
       and queued, and the sweeper sends it once Redis is back (messages.py).
    """
    charge_check(user=owner, team=team)
    estimate = estimate_for(model, user=owner, team=team)
    storage_quota_check(team=team)
    submit_rate_check(user=owner)
    organization = room_ensure(owner=owner, estimate=estimate)
    with transaction.atomic():
        owner_lock(owner=owner)
        active_jobs_check(user=owner)
        queue_round = queue_round_next(owner=owner)[0]
        budget_reserve(
            owner=owner, team=team, token=token, estimate=estimate, organization=organization
        )
        job = Job(
            owner=owner,
            team=team,
            token=token,
            prompt=prompt,
            model=model,
            size=size,
            seconds=seconds,
            response_format=response_format,
            hold=estimate,
            queue_round=queue_round,
            enqueued_at=timezone.now(),
            webhook_url=webhook_url,
            api_base_url=api_base_url if webhook_url else "",
            group=group,
            group_position=group_position if group is not None else None,
        )
        if image is not None:
            job.input_image.save(image.name.rsplit("/", 1)[-1], image, save=False)
            job.stored_bytes = image.size
        job.save()
        run_message_send_on_commit(job_id=job.pk, stamp=job.enqueued_at)
    return job


def job_cancel(*, job: Job) -> bool:
    """QUEUED → CANCELED. False when a worker claimed it first: a running call cannot be stopped
    at the provider, so it runs to the end."""
    with transaction.atomic():
        canceled = Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
            status=Job.Status.CANCELED, finished_at=timezone.now(), cost=0, hold=0
        )
        if canceled:
            job_webhook_record(job=job)
            metrics.job_finished_record(state=Job.Status.CANCELED)
    return bool(canceled)


def job_retry(*, job: Job) -> Job:
    """A new job with the same request, which the person chose to pay for again if need be.

    The failed job keeps its own record (and its possible cost) for reconciliation. A job of a
    comparison or variations is retried into the same group, at the same place, so the group's
    page, gallery entry and zip show the retry beside the others; a job of a batch into its
    batch, as a new attempt of its row (batches.batch_retry), so the batch's page shows it; a
    row retried already is refused (NothingToRetryError).
    """
    if job.status != Job.Status.FAILED:
        raise ValueError("Only a failed job can be retried.")
    if job.group_id is not None and job.group.kind == JobGroup.Kind.BATCH:
        from .batches import batch_retry

        return batch_retry(batch=job.group, job_ids=[job.pk])[0]
    image = None
    if job.input_image:
        with job.input_image.open("rb") as original:
            image = ContentFile(original.read(), name=job.input_image.name)
    return job_create(
        owner=job.owner,
        team=job.team,
        prompt=job.prompt,
        model=job.model,
        size=job.size,
        seconds=job.seconds,
        response_format=job.response_format,
        image=image,
        group=job.group,
        group_position=job.group_position,
    )


def job_delete(*, job: Job) -> bool:
    """Remove a finished job's files and prompt, and end its share link. The row stays, so its
    cost is still counted. The files go through files.job_files_delete, which locks the row: a
    poster made a moment after the job succeeded (job_make_poster) is either on the row there,
    or finds the job deleted."""
    if not job.is_terminal:
        return False
    return job_files_delete(
        job_id=job.pk,
        condition=Q(status=job.status, deleted_at__isnull=True),
        deleted_at=timezone.now(),
        prompt="",
        share_token=None,
    )
