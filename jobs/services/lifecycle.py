"""What a person does with a job: create, cancel, retry, delete."""

import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from jobs.models import Job

from .budgets import budget_reserve, estimate_for
from .limits import active_jobs_check, model_available_check, submit_rate_check
from .messages import job_message_send_on_commit

logger = logging.getLogger(__name__)


def job_create(*, owner, prompt, model, size, seconds, response_format, image=None) -> Job:
    """Save a new job with a hold on its owner's budget, and enqueue it once the row is committed
    (so the worker can see it). Raises a SubmitRefusedError, and saves nothing, when refused.

    1. Check the owner may use the model (ModelUnavailableError: hidden, staff-only, or gone
       from the catalog), and count the submit against their per-minute rate
       (SubmitRateLimitedError).
    2. In one transaction: lock the owner's budget row and check the estimate fits
       (OverBudgetError), then, still under that lock, check the cap on queued and running jobs
       (TooManyActiveJobsError).
    3. Save the job with its hold, and enqueue it after commit. If Redis is away then, the job
       stays saved and queued, and the sweeper sends it once Redis is back (messages.py).
    """
    from jobs.tasks import run_job

    model_available_check(user=owner, model=model)
    submit_rate_check(user=owner)
    estimate = estimate_for(model)
    with transaction.atomic():
        budget_reserve(user=owner, estimate=estimate)
        active_jobs_check(user=owner)
        job = Job(
            owner=owner,
            prompt=prompt,
            model=model,
            size=size,
            seconds=seconds,
            response_format=response_format,
            hold=estimate,
            enqueued_at=timezone.now(),
        )
        if image is not None:
            job.input_image.save(image.name.rsplit("/", 1)[-1], image, save=False)
        job.save()
        job_message_send_on_commit(task=run_job, job_id=job.pk, stamp=job.enqueued_at)
    return job


def job_cancel(*, job: Job) -> bool:
    """QUEUED → CANCELED. False when a worker claimed it first: a running call cannot be stopped
    at the provider, so it runs to the end."""
    canceled = Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELED, finished_at=timezone.now(), cost=0, hold=0
    )
    return bool(canceled)


def job_retry(*, job: Job) -> Job:
    """A new job with the same request, which the person chose to pay for again if need be.

    The failed job keeps its own record (and its possible cost) for reconciliation.
    """
    if job.status != Job.Status.FAILED:
        raise ValueError("Only a failed job can be retried.")
    image = None
    if job.input_image:
        with job.input_image.open("rb") as original:
            image = ContentFile(original.read(), name=job.input_image.name)
    return job_create(
        owner=job.owner,
        prompt=job.prompt,
        model=job.model,
        size=job.size,
        seconds=job.seconds,
        response_format=job.response_format,
        image=image,
    )


def job_delete(*, job: Job) -> bool:
    """Remove a finished job's files and prompt, and end its share link. The row stays, so its
    cost is still counted."""
    if not job.is_terminal:
        return False
    # The row is locked and its files read afresh: a poster made a moment after the job
    # succeeded (job_make_poster) is either on the row here, or finds the job deleted.
    with transaction.atomic():
        row = (
            Job.objects.select_for_update()
            .filter(pk=job.pk, status=job.status, deleted_at__isnull=True)
            .first()
        )
        if row is None:
            return False
        files = [f for f in (row.video, row.input_image, row.poster) if f]
        Job.objects.filter(pk=row.pk).update(
            deleted_at=timezone.now(),
            prompt="",
            video="",
            input_image="",
            poster="",
            share_token=None,
        )
    for field_file in files:
        field_file.storage.delete(field_file.name)
    return True
