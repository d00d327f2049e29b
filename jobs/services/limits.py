"""Limits on how fast and how much one person may submit. Each refusal says what to do next."""

import time

from django.conf import settings
from django.core.cache import cache

from jobs.models import Job

RATE_WINDOW_SECONDS = 60


class SubmitRefusedError(Exception):
    """A submit the studio turned down before saving anything. The message is for the person."""


class SubmitRateLimitedError(SubmitRefusedError):
    def __init__(self, *, limit: int, retry_after: int):
        self.limit = limit
        self.retry_after = retry_after
        super().__init__(
            f"You have started {limit} videos in the last minute, the most this studio allows. "
            f"Try again in {retry_after} second{'s' if retry_after != 1 else ''}."
        )


class TooManyActiveJobsError(SubmitRefusedError):
    def __init__(self, *, limit: int):
        self.limit = limit
        super().__init__(
            f"You already have {limit} videos queued or generating, the most this studio allows "
            "at once. Wait for one to finish, or cancel a queued one."
        )


class ModelUnavailableError(SubmitRefusedError):
    def __init__(self, *, model: str):
        self.model = model
        super().__init__(f"{model} is not available in this studio any more. Choose another model.")


def model_available_check(*, user, model: str) -> None:
    """Refuse a model that is not in the catalog, or that admins hid or kept for staff."""
    from jobs import selectors

    if not selectors.catalog_models(user=user).filter(pk=model).exists():
        raise ModelUnavailableError(model=model)


def submit_rate_check(*, user) -> None:
    """Count this submit against the user's JOB_SUBMITS_PER_MINUTE; raise when over.
    Refused attempts count too: hammering does not help."""
    limit = settings.JOB_SUBMITS_PER_MINUTE
    retry_after = count_in_minute(f"submits:{user.pk}", limit)
    if retry_after is not None:
        raise SubmitRateLimitedError(limit=limit, retry_after=retry_after)


def count_in_minute(name: str, limit: int) -> int | None:
    """Count one more event for `name` in this minute's window; past `limit`, the seconds until
    the next window (else None). `limit` 0 or less counts nothing and never refuses.

    A fixed one-minute window in the shared cache (Redis), so every process counts together:
    1. create the window's counter if it is new, 2. increment it atomically, 3. compare.
    """
    if limit <= 0:
        return None
    now = time.time()
    window = int(now // RATE_WINDOW_SECONDS)
    key = f"{name}:{window}"
    cache.add(key, 0, timeout=RATE_WINDOW_SECONDS * 2)
    if cache.incr(key) > limit:
        return max(1, int((window + 1) * RATE_WINDOW_SECONDS - now + 0.999))
    return None


def active_jobs_check(*, user) -> None:
    """Refuse when the user already has JOB_ACTIVE_LIMIT jobs queued or running.

    Must run inside the submit's transaction, after budget_reserve has locked the user's budget
    row: submits for one user then count and insert one at a time, so two at once cannot both
    squeeze under the cap.
    """
    limit = settings.JOB_ACTIVE_LIMIT
    if limit <= 0:
        return
    active = Job.objects.filter(
        owner=user, status__in=(Job.Status.QUEUED, Job.Status.RUNNING)
    ).count()
    if active >= limit:
        raise TooManyActiveJobsError(limit=limit)
