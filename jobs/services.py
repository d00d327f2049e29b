"""Every write and every status change. Each transition is one conditional UPDATE."""

import logging
import random
import tempfile
from datetime import timedelta
from decimal import Decimal

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from . import imagerouter
from .models import Job, VideoModel

logger = logging.getLogger(__name__)

# A connect error or a 429 is retried this many times in all before the job fails (not charged).
MAX_ATTEMPTS = 5
DOWNLOAD_ATTEMPTS = 3


def job_create(*, owner, prompt, model, size, seconds, response_format, image=None) -> Job:
    """Save a new job and enqueue it once the row is committed, so the worker can see it."""
    from .tasks import run_job

    with transaction.atomic():
        job = Job(
            owner=owner,
            prompt=prompt,
            model=model,
            size=size,
            seconds=seconds,
            response_format=response_format,
        )
        if image is not None:
            job.input_image.save(image.name, image, save=False)
        job.save()
        run_job.delay_on_commit(str(job.pk))
    return job


def job_run(*, job_id) -> None:
    """Run one attempt of a job.

    1. Claim it: QUEUED → RUNNING in one conditional UPDATE. Only a caller that changed the row
       goes on, so a duplicate message can never make a second paid call.
    2. Call the provider once, holding no transaction and no row lock.
    3. Leave RUNNING in one conditional UPDATE that records the verdict: STORING with the cost,
       FAILED (refused, cost 0; or outcome unknown, flagged), or QUEUED again after a wait when the
       provider certainly did nothing.
    4. Store the video and finish (`job_store`).
    """
    now = timezone.now()
    claimed = (
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .update(status=Job.Status.RUNNING, attempt=F("attempt") + 1, started_at=now, error="")
    )
    if not claimed:
        logger.info("job %s: not claimable (gone, already claimed or waiting); skipping", job_id)
        return
    job = Job.objects.get(pk=job_id)
    running = Job.objects.filter(pk=job_id, status=Job.Status.RUNNING)

    try:
        result = _call_provider(job)
    except imagerouter.NotProcessedError as exc:
        _requeue_or_fail(job, running, exc)
        return
    except imagerouter.RefusedError as exc:
        running.update(
            status=Job.Status.FAILED,
            cost=Decimal(0),
            error=_refusal_message(exc),
            finished_at=timezone.now(),
        )
        return
    except imagerouter.OutcomeUnknownError as exc:
        running.update(
            status=Job.Status.FAILED,
            outcome_unknown=True,
            error=exc.message,
            finished_at=timezone.now(),
        )
        return

    try:
        moved = running.update(
            status=Job.Status.STORING,
            cost=result.cost,
            latency_ms=result.latency_ms,
            provider_url=result.url or "",
        )
        if moved:
            job_store(job_id=job_id, video=result.video)
    finally:
        result.close()


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
    from .tasks import run_job

    if job.attempt >= MAX_ATTEMPTS:
        running.update(
            status=Job.Status.FAILED,
            cost=Decimal(0),
            error=f"{exc.message} Gave up after {job.attempt} tries; nothing was charged.",
            finished_at=timezone.now(),
        )
        return
    backoff = min(60.0, 2.0 ** (job.attempt - 1)) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not secrecy
    delay = max(backoff, exc.retry_after or 0.0)
    not_before = timezone.now() + timedelta(seconds=delay)
    if running.update(status=Job.Status.QUEUED, not_before=not_before, error=exc.message):
        run_job.apply_async(args=[str(job.pk)], countdown=delay)


def job_store(*, job_id, video=None) -> None:
    """STORING → SUCCEEDED: put the video in our own storage. Never calls the provider again.

    `video` is the decoded base64 result; without it the provider's URL is downloaded (to a
    temporary file, in chunks), checked, and then saved.
    """
    job = Job.objects.get(pk=job_id)
    try:
        if video is None:
            with tempfile.TemporaryFile() as downloaded:
                _download_with_retries(job.provider_url, downloaded)
                name = _save_video(job, downloaded)
        else:
            name = _save_video(job, video)
    except (imagerouter.DownloadError, StoreError, OSError) as exc:
        Job.objects.filter(pk=job_id, status=Job.Status.STORING).update(
            status=Job.Status.FAILED,
            error=f"The video was made (and paid for) but could not be stored: {exc}",
            finished_at=timezone.now(),
        )
        return
    finished = Job.objects.filter(pk=job_id, status=Job.Status.STORING).update(
        status=Job.Status.SUCCEEDED, video=name, finished_at=timezone.now()
    )
    if not finished:
        default_storage.delete(name)


class StoreError(Exception):
    pass


def _download_with_retries(url: str, destination) -> None:
    client = imagerouter.get_client()
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        destination.seek(0)
        destination.truncate()
        try:
            client.download(url, destination)
            return
        except imagerouter.DownloadError:
            if attempt == DOWNLOAD_ATTEMPTS:
                raise
            logger.warning("download attempt %d failed; retrying", attempt)


def _save_video(job: Job, video) -> str:
    video.seek(0)
    if video.read(12)[4:8] != b"ftyp":
        raise StoreError("the result is not an MP4 file")
    video.seek(0)
    return default_storage.save(f"videos/{job.created_at:%Y/%m}/{job.pk}.mp4", File(video))


def _refusal_message(exc: imagerouter.RefusedError) -> str:
    if isinstance(exc, imagerouter.InsufficientCreditsError):
        return (
            "The studio's ImageRouter account is out of credit, so nothing was generated or "
            "charged. An admin needs to top it up."
        )
    return f"ImageRouter refused this request: {exc.message} Nothing was charged."


def _image_content_type(name: str) -> str:
    suffix = name.rsplit(".", 1)[-1].lower()
    return {
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "webp": "image/webp",
    }.get(suffix, "application/octet-stream")


# --- The model catalog -----------------------------------------------------------------------------


def catalog_sync() -> int:
    """Replace the catalog with the provider's video models. Returns how many there are.

    A failed fetch raises and leaves the last good catalog untouched.
    """
    models = imagerouter.get_client().list_models(output="video")
    now = timezone.now()
    rows = [_catalog_row(model_id, info, now) for model_id, info in models.items()]
    rows = [row for row in rows if row is not None]
    with transaction.atomic():
        VideoModel.objects.exclude(pk__in=[row.pk for row in rows]).delete()
        for row in rows:
            row.save()
    return len(rows)


def _catalog_row(model_id: str, info: dict, now) -> VideoModel | None:
    if "video" not in (info.get("output") or ["video"]):
        return None
    providers = info.get("providers") or [{}]
    pricing = providers[0].get("pricing") or {}
    kind = pricing.get("type", VideoModel.Pricing.FIXED)
    if kind == VideoModel.Pricing.FIXED:
        low = average = high = Decimal(str(pricing.get("value", 0)))
    else:
        band = pricing.get("range") or {}
        low, average, high = (Decimal(str(band.get(key, 0))) for key in ("min", "average", "max"))
    params = info.get("supported_params") or {}
    return VideoModel(
        id=model_id,
        name=providers[0].get("model_name") or model_id,
        pricing=kind if kind in VideoModel.Pricing.values else VideoModel.Pricing.FIXED,
        price_min=low,
        price_average=average,
        price_max=high,
        seconds=[int(s) for s in info.get("seconds") or []],
        default_seconds=info.get("default_seconds"),
        sizes=list(info.get("sizes") or []),
        accepts_image=bool(params.get("edit")),
        synced_at=now,
    )
