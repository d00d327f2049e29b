"""Reads of jobs for the person asking: one job (their own, or anyone's for staff), where a
queued job stands, how long a model usually takes here, and My videos' searches."""

from dataclasses import dataclass

from django.shortcuts import get_object_or_404

from jobs.models import Job


def job_get_for_user(*, user, job_id) -> Job:
    """The job, if `user` owns it or is staff; otherwise 404, so nobody learns it exists."""
    jobs = Job.objects.filter(deleted_at__isnull=True)
    if not user.is_staff:
        jobs = jobs.filter(owner=user)
    return get_object_or_404(jobs, pk=job_id)


def job_get_for_owner(*, user, job_id) -> Job:
    """The job, only for its owner: for actions that spend or destroy (cancel, retry, delete).
    Staff may look at anyone's job, but not spend money or delete work in their name."""
    return get_object_or_404(Job.objects.filter(deleted_at__isnull=True, owner=user), pk=job_id)


# How many recent successes the wait estimate looks at: enough to be steady, recent enough to
# follow a provider that speeds up or slows down.
LATENCY_SAMPLE = 50


@dataclass(frozen=True)
class TypicalWait:
    seconds: float  # the median, from start to stored video
    sample: int  # how many recent successes it comes from


def typical_wait(*, model_id: str) -> TypicalWait | None:
    """The median time from start to stored video of the last LATENCY_SAMPLE successes on this
    model in this studio; None before its first success.

    Uses the job_model_succeeded index, so it reads at most LATENCY_SAMPLE rows.
    """
    rows = (
        Job.objects.filter(model=model_id, status=Job.Status.SUCCEEDED, started_at__isnull=False)
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:LATENCY_SAMPLE]
    )
    waits = sorted((finished - started).total_seconds() for started, finished in rows)
    if not waits:
        return None
    middle = len(waits) // 2
    median = waits[middle] if len(waits) % 2 else (waits[middle - 1] + waits[middle]) / 2
    return TypicalWait(seconds=median, sample=len(waits))


@dataclass(frozen=True)
class QueuePosition:
    mine: int  # queued jobs of the same owner ahead of this one, plus one
    studio: int  # queued jobs of anyone ahead of this one, plus one


def queue_position(*, job: Job) -> QueuePosition:
    """Where a QUEUED job stands: 1 means next. Two counts on the job_status_created index."""
    ahead = Job.objects.filter(status=Job.Status.QUEUED, created_at__lt=job.created_at)
    return QueuePosition(
        mine=ahead.filter(owner_id=job.owner_id).count() + 1, studio=ahead.count() + 1
    )


def job_search_for_user(*, user, status: str = "", model: str = "", query: str = ""):
    """The user's own jobs, newest first, narrowed by status, model and words in the prompt.

    The owner filter and the order ride the job_owner_created index. The prompt search is a plain
    icontains, a scan of the owner's rows: fine for the hundreds of jobs a person makes, but at
    scale it would want a trigram (pg_trgm GIN) or full-text index on the prompt.
    """
    jobs = Job.objects.filter(owner=user, deleted_at__isnull=True)
    if status:
        jobs = jobs.filter(status=status)
    if model:
        jobs = jobs.filter(model=model)
    if query:
        jobs = jobs.filter(prompt__icontains=query)
    return jobs.order_by("-created_at", "-pk")


def job_models_for_user(*, user) -> list[str]:
    """The models the user's own jobs used, for the gallery's model filter: it offers what they
    can find, including models since dropped from the catalog."""
    models = Job.objects.filter(owner=user, deleted_at__isnull=True).values_list("model", flat=True)
    return list(models.distinct().order_by("model"))


def jobs_selected_by_owner(*, user, job_ids):
    """The user's own jobs among `job_ids`, for bulk actions that destroy or hand over files.
    Anyone else's id, staff included, is simply not there; so are deleted and unknown ones."""
    jobs = Job.objects.filter(owner=user, deleted_at__isnull=True, pk__in=job_ids)
    return jobs.order_by("-created_at", "-pk")
