"""What the worker does: claim a job, make the one paid call, record the verdict, store the video."""

import logging
import os
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
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs import imagerouter, metrics
from jobs.frames import frame_image
from jobs.logcontext import current_job_id
from jobs.models import CostEntry, Job, Notice, VideoModel
from jobs.mp4 import NotMP4Error, check_mp4

from . import provider_keys
from .alerts import job_alert_ended, staff_alert_out_of_credit, staff_alert_provider_cap
from .ledger import ledger_record
from .messages import job_message_send, run_message_send
from .queue import job_claim_next
from .webhooks import job_webhook_record

logger = logging.getLogger(__name__)

# A connect error or a 429 is retried this many times in all before the job fails (not charged).
MAX_ATTEMPTS = 5
MAX_BACKOFF_SECONDS = 60.0
DOWNLOAD_ATTEMPTS = 4


def job_run_next() -> None:
    """Run one attempt of the fairest queued job (services/queue.py): what a message on the
    generate queue asks for. Nothing to do when no queued job can run now.

    1. Claim the fairest job: QUEUED → RUNNING in one conditional UPDATE (queue.job_claim_next).
    2. to 4. As job_run, from its step 2.
    """
    job = job_claim_next()
    if job is None:
        logger.info("no queued job can run now; this message is spent")
        return
    current_job_id.set(str(job.pk))  # this task's log lines, Celery's own included, name it
    _run_claimed(job)


def job_run(*, job_id) -> None:
    """Run one attempt of this job, whatever its turn in the fair queue (tests, and the
    operator's shell).

    1. Claim it: QUEUED → RUNNING in one conditional UPDATE. Only a caller that changed the row
       goes on, so a duplicate or late message can never make a second paid call.
    2. Call the provider once, holding no transaction and no row lock: with the key of the
       job's place (minted if need be, services/provider_keys.py) when the studio has a
       management key, else with IMAGEROUTER_API_KEY.
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
    _run_claimed(Job.objects.get(pk=job_id))


def _run_claimed(job: Job) -> None:
    """Steps 2 to 4 of job_run, for a job this caller has just claimed."""
    job_id = job.pk
    running = Job.objects.filter(pk=job_id, status=Job.Status.RUNNING)
    logger.info("job %s: attempt %d calling %s", job_id, job.attempt, job.model)

    # The call waits for minutes: hand the database connection back meanwhile, so hundreds of
    # calls in flight do not hold hundreds of idle connections (PostgreSQL allows 100 by default).
    _release_connection()
    key = None
    call_started = time.monotonic()
    try:
        key, client = _client_for(job)
        _release_connection()
        call_started = time.monotonic()  # the provider's time only, not a key's minting
        result = _call_provider(job, client)
    except provider_keys.ProviderKeyUnavailableError as exc:
        if exc.retry:
            error = imagerouter.NotProcessedError(exc.message, retry_after=exc.retry_after)
            _requeue_or_fail(job, running, error)
        else:
            fail_refused(job, running, exc.message, outcome=CostEntry.Outcome.NOT_PROCESSED)
        return
    except imagerouter.NotProcessedError as exc:
        rate_limited = isinstance(exc, imagerouter.RateLimitedError)
        outcome = metrics.RATE_LIMITED if rate_limited else metrics.UNREACHABLE
        metrics.provider_call_record(model=job.model, outcome=outcome)
        _requeue_or_fail(job, running, exc)
        return
    except imagerouter.RefusedError as exc:
        metrics.provider_call_record(model=job.model, outcome=metrics.REFUSED)
        logger.info("job %s: refused (%s)", job_id, exc.status)
        if key is not None and _refused_on_place_key(job, running, key, exc):
            return
        fail_refused(job, running, _refusal_message(exc))
        if isinstance(exc, imagerouter.InsufficientCreditsError):
            _notify_admins_out_of_credit(job, exc)
        return
    except (imagerouter.OutcomeUnknownError, SoftTimeLimitExceeded) as exc:
        metrics.provider_call_record(model=job.model, outcome=metrics.OUTCOME_UNKNOWN)
        logger.warning("job %s: outcome unknown", job_id)
        message = getattr(exc, "message", imagerouter.UNKNOWN_MESSAGE + " (it ran out of time)")
        fail_unknown(job, running, message)
        return

    metrics.provider_call_record(
        model=job.model, outcome=metrics.SUCCESS, seconds=time.monotonic() - call_started
    )
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
            _finish_store(job, result.video, answered_at=stamp)
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
            # The email is rendered before the ledger's roll-up rows are locked: they are
            # shared by every settlement, so nothing slow may run while this one holds them.
            job_alert_ended(job_id=job.pk)
            ledger_record(job=job, outcome=outcome)
            job_webhook_record(job=job)
            metrics.job_finished_record(state=Job.Status.FAILED)
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
            # The email is rendered before the ledger's roll-up rows are locked: they are
            # shared by every settlement, so nothing slow may run while this one holds them.
            job_alert_ended(job_id=job.pk)
            ledger_record(job=job, outcome=CostEntry.Outcome.UNKNOWN, possible_cost=possible)
            job_webhook_record(job=job)
            metrics.job_finished_record(state=Job.Status.FAILED)
    return bool(failed)


def _client_for(job: Job):
    """(the provider key, a client calling with it) for the job's place, recorded on the job
    before the call; or (None, the default client) without a management key. The secret is
    read from its row here, in the worker: it never travels in a task message."""
    if not provider_keys.enabled():
        return None, imagerouter.get_client()
    key, secret = provider_keys.provider_key_for_job(job=job)
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(provider_key=key)
    job.provider_key = key
    return key, imagerouter.ImageRouterClient.from_settings(api_key=secret)


def _refused_on_place_key(job: Job, running, key, exc: imagerouter.RefusedError) -> bool:
    """A refusal of a call made with the place's own key that is about that key. True if
    handled here:

    - 401: the provider no longer takes the key (disabled in its dashboard, or expired early):
      retire it, so the next attempt mints another, and wait as for a call not processed;
    - the key's cap (services.provider_keys.cap_verdict): the job fails, not charged, with a
      message saying so; if the studio's ledger says the key had room, staff are told at once.
    """
    if isinstance(exc, imagerouter.InsufficientCreditsError):
        return False
    if exc.status == 401:
        provider_keys.provider_key_retire(
            key=key, because="ImageRouter refused it (HTTP 401): disabled or expired"
        )
        place = provider_keys.place_of_job(job).label
        retry = imagerouter.NotProcessedError(
            f"ImageRouter no longer accepts the key of {place}; the studio will make another "
            "and try again. Nothing was charged."
        )
        _requeue_or_fail(job, running, retry)
        return True
    verdict = provider_keys.cap_verdict(key=key, refusal=exc)
    if verdict is None:
        return False
    logger.warning("job %s: refused by the cap on provider key %s", job.pk, key.pk)
    # Staff are told before the job shows as failed, so its message ("Staff have been told") is
    # already true when its owner reads it. The refusal is worth telling even if the job was
    # cancelled meanwhile: the provider's cap and the studio's ledger disagree either way.
    if not verdict.studio_agrees:
        _notify_staff_provider_cap(job, verdict)
    fail_refused(job, running, verdict.message)
    return True


def _notify_staff_provider_cap(job: Job, verdict) -> None:
    """Open the provider-cap notice unless one is open (a partial unique constraint decides
    races), and email staff about it, as for an account out of credit."""
    try:
        with transaction.atomic():
            notice = Notice.objects.create(
                kind=Notice.Kind.PROVIDER_CAP, message=verdict.notice_message, job=job
            )
            staff_alert_provider_cap(notice=notice)
    except IntegrityError:
        pass  # staff have been told and have not resolved it yet


def _call_provider(job: Job, client) -> imagerouter.GenerationResult:
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
    """Nothing was done at the provider: wait (backoff with jitter, or Retry-After) and retry.
    The job keeps its round, so once its wait is over it is the first of the queue to run; the
    message sent for it after the wait lets a slot run the fairest job then (it, as a rule)."""
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
        run_message_send(job_id=job.pk, stamp=now, countdown=delay)


def _notify_admins_out_of_credit(job: Job, exc: imagerouter.RefusedError) -> None:
    """Open a notice unless one is open already (a partial unique constraint decides races),
    and email staff about it (once per notice and person)."""
    try:
        with transaction.atomic():
            notice = Notice.objects.create(
                kind=Notice.Kind.INSUFFICIENT_CREDITS,
                message=f"ImageRouter refused a generation for lack of credit: {exc.message}",
                job=job,
            )
            staff_alert_out_of_credit(notice=notice)
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
        with transaction.atomic():
            failed = Job.objects.filter(pk=job_id, status=Job.Status.STORING).update(
                status=Job.Status.FAILED,
                error="The video was made (and paid for) but the worker holding it stopped "
                "before saving it.",
                finished_at=timezone.now(),
            )
            if failed:
                job_webhook_record(job=job)
                job_alert_ended(job_id=job.pk)
                metrics.job_finished_record(state=Job.Status.FAILED)
        return
    _release_connection()  # a download can take minutes
    with tempfile.NamedTemporaryFile(suffix=".mp4") as downloaded:
        try:
            _download_with_retries(job, downloaded)
        except imagerouter.DownloadError as exc:
            _fail_store(job, exc)
            return
        _finish_store(job, downloaded, checked=True, answered_at=job.enqueued_at)


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


def _finish_store(job: Job, video, *, answered_at, checked: bool = False) -> None:
    """`answered_at` is when the provider's answer was recorded (STORING's `enqueued_at`), for
    the studio-overhead histogram."""
    try:
        if not checked:
            _check_video(video)
        size = video.seek(0, os.SEEK_END)  # its bytes, recorded for the storage figures
        video.seek(0)
        name = default_storage.save(f"videos/{job.created_at:%Y/%m}/{job.pk}.mp4", File(video))
    except (StoreError, OSError) as exc:
        _fail_store(job, exc)
        return
    finished_at = timezone.now()
    with transaction.atomic():
        finished = Job.objects.filter(pk=job.pk, status=Job.Status.STORING).update(
            status=Job.Status.SUCCEEDED,
            video=name,
            finished_at=finished_at,
            stored_bytes=Coalesce("stored_bytes", 0) + size,
        )
        if finished:
            job_webhook_record(job=job)
            job_alert_ended(job_id=job.pk)
            metrics.job_succeeded_record(
                model=job.model,
                created_at=job.created_at,
                started_at=job.started_at,
                answered_at=answered_at,
                finished_at=finished_at,
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
    logged and the job goes on without one. Deleting or expiring the job meanwhile removes it
    (files.job_files_delete locks the row, so the poster is either seen and removed, or removed
    here). Its size is added to the job's stored_bytes.
    """
    alive = Q(deleted_at__isnull=True, expired_at__isnull=True)
    job = (
        Job.objects.filter(alive, pk=job_id, status=Job.Status.SUCCEEDED).exclude(video="").first()
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
    saved = Job.objects.filter(alive, pk=job.pk, poster="").update(
        poster=name, stored_bytes=Coalesce("stored_bytes", 0) + len(image)
    )
    if not saved:  # deleted or expired meanwhile, or a duplicate task got there first
        default_storage.delete(name)


def _fail_store(job: Job, exc: Exception) -> None:
    logger.warning("job %s: store failed: %s", job.pk, exc)
    with transaction.atomic():
        failed = Job.objects.filter(pk=job.pk, status=Job.Status.STORING).update(
            status=Job.Status.FAILED,
            error=f"The video was made (and paid for) but could not be stored: {exc}",
            finished_at=timezone.now(),
        )
        if failed:
            job_webhook_record(job=job)
            job_alert_ended(job_id=job.pk)
            metrics.job_finished_record(state=Job.Status.FAILED)


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
