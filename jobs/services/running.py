"""What the worker does: claim a job, make the one paid call, record the verdict, store the video."""

import logging
import random
import tempfile
import time
from datetime import timedelta
from decimal import Decimal

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from jobs import imagerouter
from jobs.frames import frame_image
from jobs.models import CostEntry, Job, Notice, VideoModel
from jobs.mp4 import NotMP4Error, check_mp4

from .ledger import ledger_record
from .messages import job_message_send

logger = logging.getLogger(__name__)

# A connect error or a 429 is retried this many times in all before the job fails (not charged).
MAX_ATTEMPTS = 5
MAX_BACKOFF_SECONDS = 60.0
DOWNLOAD_ATTEMPTS = 4


def job_run(*, job_id) -> None:
    """Run one attempt of a job.

    1. Claim it: QUEUED → RUNNING in one conditional UPDATE. Only a caller that changed the row
       goes on, so a duplicate or late message can never make a second paid call.
    2. Call the provider once, holding no transaction and no row lock.
    3. Leave RUNNING in one conditional UPDATE that records the verdict: STORING with the cost;
       FAILED, refused, with cost 0; FAILED, outcome unknown, with the model's top price as its
       possible cost; or QUEUED again after a wait when the provider certainly did nothing.
    4. Store the video: a base64 result at once (it is only on this machine), a URL result in its
       own task, which can be retried without ever calling the API again.
    """
    now = timezone.now()
    claimed = (
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .update(status=Job.Status.RUNNING, attempt=F("attempt") + 1, started_at=now, error="")
    )
    if not claimed:
        logger.info("job %s: not claimable (gone, claimed, canceled or waiting); skipped", job_id)
        return
    job = Job.objects.get(pk=job_id)
    running = Job.objects.filter(pk=job_id, status=Job.Status.RUNNING)
    logger.info("job %s: attempt %d calling %s", job_id, job.attempt, job.model)

    # The call waits for minutes: hand the database connection back meanwhile, so hundreds of
    # calls in flight do not hold hundreds of idle connections (PostgreSQL allows 100 by default).
    _release_connection()
    try:
        result = _call_provider(job)
    except imagerouter.NotProcessedError as exc:
        _requeue_or_fail(job, running, exc)
        return
    except imagerouter.RefusedError as exc:
        logger.info("job %s: refused (%s)", job_id, exc.status)
        fail_refused(job, running, _refusal_message(exc))
        if isinstance(exc, imagerouter.InsufficientCreditsError):
            _notify_admins_out_of_credit(job, exc)
        return
    except (imagerouter.OutcomeUnknownError, SoftTimeLimitExceeded) as exc:
        logger.warning("job %s: outcome unknown", job_id)
        message = getattr(exc, "message", imagerouter.UNKNOWN_MESSAGE + " (it ran out of time)")
        fail_unknown(job, running, message)
        return

    stamp = timezone.now()
    try:
        with transaction.atomic():
            moved = running.update(
                status=Job.Status.STORING,
                cost=result.cost,
                hold=0,
                latency_ms=result.latency_ms,
                provider_url=result.url or "",
                enqueued_at=stamp,
            )
            if moved:
                ledger_record(job=job, outcome=CostEntry.Outcome.CHARGED, cost=result.cost)
        if not moved:
            return
        logger.info("job %s: generated, cost %s", job_id, result.cost)
        if result.video is not None:
            _finish_store(job, result.video)
        else:
            from jobs.tasks import store_job

            job_message_send(task=store_job, job_id=job.pk, stamp=stamp)
    finally:
        result.close()


def _release_connection() -> None:
    """Hand this thread's database connection back (to the pool, with PostgreSQL) before a wait
    that needs none: a provider call, a download, ffmpeg. Each process's pool is small
    (DATABASE_POOL_SIZE); a thread that held its connection through the wait would make the
    others wait for theirs (bench/inflight.py saw stores queue behind posters that way). Inside
    an atomic block (a test's transaction) the connection must stay."""
    if not connection.in_atomic_block:
        connection.close()


def fail_refused(
    job: Job, running, message: str, *, outcome: str = CostEntry.Outcome.REFUNDED
) -> bool:
    """RUNNING → FAILED at no cost, with its ledger entry of 0: the provider refunded it, or
    (outcome NOT_PROCESSED) never took it."""
    with transaction.atomic():
        failed = running.update(
            status=Job.Status.FAILED,
            cost=Decimal(0),
            hold=0,
            error=message,
            finished_at=timezone.now(),
        )
        if failed:
            ledger_record(job=job, outcome=outcome)
    return bool(failed)


def fail_unknown(job: Job, running, message: str) -> bool:
    """RUNNING → FAILED, outcome unknown, with the model's top price as its possible cost.

    `running` is the job's RUNNING queryset (it may carry more conditions, such as the
    sweeper's deadline). The ledger entry is written in the same transaction, pending review.
    """
    possible = VideoModel.objects.filter(pk=job.model).values_list("price_max", flat=True).first()
    with transaction.atomic():
        failed = running.update(
            status=Job.Status.FAILED,
            outcome_unknown=True,
            possible_cost=possible,
            hold=0,
            error=message,
            finished_at=timezone.now(),
        )
        if failed:
            ledger_record(job=job, outcome=CostEntry.Outcome.UNKNOWN, possible_cost=possible)
    return bool(failed)


def _call_provider(job: Job) -> imagerouter.GenerationResult:
    client = imagerouter.get_client()
    params = {
        "model": job.model,
        "prompt": job.prompt,
        "size": job.size,
        "seconds": job.seconds,
        "response_format": job.response_format,
    }
    if not job.input_image:
        return client.generate(**params)
    with job.input_image.open("rb") as image:
        return client.generate(
            **params,
            image=image,
            image_name=job.input_image.name.rsplit("/", 1)[-1],
            image_content_type=_image_content_type(job.input_image.name),
        )


def _requeue_or_fail(job: Job, running, exc: imagerouter.NotProcessedError) -> None:
    """Nothing was done at the provider: wait (backoff with jitter, or Retry-After) and retry."""
    from jobs.tasks import run_job

    if job.attempt >= MAX_ATTEMPTS:
        fail_refused(
            job,
            running,
            f"{exc.message} Gave up after {job.attempt} tries; nothing was charged.",
            outcome=CostEntry.Outcome.NOT_PROCESSED,
        )
        return
    backoff = min(MAX_BACKOFF_SECONDS, 2.0 ** (job.attempt - 1))
    backoff *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not secrecy
    delay = max(backoff, exc.retry_after or 0.0)
    now = timezone.now()
    waiting = running.update(
        status=Job.Status.QUEUED,
        not_before=now + timedelta(seconds=delay),
        enqueued_at=now,
        error=exc.message,
    )
    if waiting:
        logger.info("job %s: provider did nothing; retrying in %.1f s", job.pk, delay)
        job_message_send(task=run_job, job_id=job.pk, stamp=now, countdown=delay)


def _notify_admins_out_of_credit(job: Job, exc: imagerouter.RefusedError) -> None:
    """Open a notice unless one is open already (a partial unique constraint decides races)."""
    try:
        with transaction.atomic():
            Notice.objects.create(
                kind=Notice.Kind.INSUFFICIENT_CREDITS,
                message=f"ImageRouter refused a generation for lack of credit: {exc.message}",
                job=job,
            )
    except IntegrityError:
        pass  # an admin has already been told and has not resolved it yet


# --- Storing ----------------------------------------------------------------------------------


class StoreError(Exception):
    pass


def job_store(*, job_id) -> None:
    """Download a URL result into our storage: STORING → SUCCEEDED. Never calls the API.

    1. Download to a temporary file in chunks, retrying with backoff.
    2. Check that it is a whole MP4 (jobs/mp4.py) and save it under the job's own name.
    3. STORING → SUCCEEDED in one conditional UPDATE. If another store got there first, delete
       this copy, so a duplicate store task is harmless.
    4. Ask for its poster (job_make_poster), which comes a moment later, off the job's path.
    """
    job = Job.objects.filter(pk=job_id, status=Job.Status.STORING).first()
    if job is None:
        logger.info("job %s: not storing any more; skipped", job_id)
        return
    if not job.provider_url:
        # A base64 result lived only in the memory of a worker that is gone.
        Job.objects.filter(pk=job_id, status=Job.Status.STORING).update(
            status=Job.Status.FAILED,
            error="The video was made (and paid for) but the worker holding it stopped before "
            "saving it.",
            finished_at=timezone.now(),
        )
        return
    _release_connection()  # a download can take minutes
    with tempfile.NamedTemporaryFile(suffix=".mp4") as downloaded:
        try:
            _download_with_retries(job, downloaded)
        except imagerouter.DownloadError as exc:
            _fail_store(job, exc)
            return
        _finish_store(job, downloaded, checked=True)


def _download_with_retries(job: Job, destination) -> None:
    client = imagerouter.get_client()
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        destination.seek(0)
        destination.truncate()
        try:
            client.download(job.provider_url, destination)
            destination.flush()
            _check_video(destination)
            return
        except (imagerouter.DownloadError, StoreError) as exc:
            if attempt == DOWNLOAD_ATTEMPTS:
                raise imagerouter.DownloadError(str(exc)) from None
            delay = settings.STORE_RETRY_DELAY * 2 ** (attempt - 1)
            logger.warning(
                "job %s: download %d failed (%s); retry in %s s", job.pk, attempt, exc, delay
            )
            time.sleep(delay)


def _finish_store(job: Job, video, *, checked: bool = False) -> None:
    try:
        if not checked:
            _check_video(video)
        video.seek(0)
        name = default_storage.save(f"videos/{job.created_at:%Y/%m}/{job.pk}.mp4", File(video))
    except (StoreError, OSError) as exc:
        _fail_store(job, exc)
        return
    finished = Job.objects.filter(pk=job.pk, status=Job.Status.STORING).update(
        status=Job.Status.SUCCEEDED, video=name, finished_at=timezone.now()
    )
    if not finished:
        default_storage.delete(name)
        return
    logger.info("job %s: stored as %s", job.pk, name)
    from jobs.tasks import make_poster

    make_poster.delay(str(job.pk))


def job_make_poster(*, job_id) -> None:
    """The first frame of a succeeded job's video, saved as a JPEG and set as its poster.

    It runs after the job has SUCCEEDED, on the poster queue, whose worker makes one at a time at
    a lower CPU priority (jobs/workers.py): ffmpeg's decode costs about 20 ms of CPU, and with
    hundreds of results landing at once it was most of the studio's overhead (bench/inflight.py). The page shows the video at
    once; the poster follows. A poster is only a picture of a video that is already paid for and
    stored, so no failure here touches the job: whatever goes wrong (a video ffmpeg cannot
    decode, ffmpeg hanging, the storage backend's own error types, which need not be OSError) is
    logged and the job goes on without one. Deleting the job meanwhile removes it (job_delete
    locks the row, so the poster is either seen and removed, or removed here).
    """
    job = (
        Job.objects.filter(pk=job_id, status=Job.Status.SUCCEEDED, deleted_at__isnull=True)
        .exclude(video="")
        .first()
    )
    if job is None or job.poster:
        return
    _release_connection()  # ffmpeg can take a while under load
    try:
        image = frame_image(job.video)
        name = default_storage.save(
            f"posters/{job.created_at:%Y/%m}/{job.pk}.jpg", ContentFile(image)
        )
    except Exception as exc:
        logger.warning("job %s: no poster (%s: %s)", job.pk, type(exc).__name__, exc)
        return
    saved = Job.objects.filter(pk=job.pk, poster="", deleted_at__isnull=True).update(poster=name)
    if not saved:  # deleted meanwhile, or a duplicate task got there first
        default_storage.delete(name)


def _fail_store(job: Job, exc: Exception) -> None:
    logger.warning("job %s: store failed: %s", job.pk, exc)
    Job.objects.filter(pk=job.pk, status=Job.Status.STORING).update(
        status=Job.Status.FAILED,
        error=f"The video was made (and paid for) but could not be stored: {exc}",
        finished_at=timezone.now(),
    )


def _check_video(video) -> None:
    """A whole MP4 (jobs/mp4.py: its boxes, not a decode); anything else is refused."""
    try:
        check_mp4(video)
    except NotMP4Error as exc:
        raise StoreError(f"the result is not a complete MP4 video: {exc}") from None


def _refusal_message(exc: imagerouter.RefusedError) -> str:
    if isinstance(exc, imagerouter.InsufficientCreditsError):
        return (
            "The studio's ImageRouter account is out of credit, so nothing was generated or "
            "charged. An admin has been told."
        )
    return f"ImageRouter refused this request: {exc.message} Nothing was charged."


def _image_content_type(name: str) -> str:
    suffix = name.rsplit(".", 1)[-1].lower()
    types = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}
    return types.get(suffix, "application/octet-stream")
