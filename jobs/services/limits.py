"""Limits on how fast and how much one person may submit. Each refusal says what to do next."""

import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Q

from jobs.models import Job

RATE_WINDOW_SECONDS = 60


class SubmitRefusedError(Exception):
    """A submit the studio turned down before saving anything. The message is for the person."""


class AccountGoneError(SubmitRefusedError):
    def __init__(self):
        super().__init__("This account has been deleted, so it cannot start videos.")


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
            "at once (a comparison, a set of variations or a batch counts as one). Wait for one "
            "to finish, or cancel a queued one."
        )


class GroupSizeError(SubmitRefusedError):
    """A comparison, set of variations or batch with fewer or more jobs than its kind allows."""


class ModelUnavailableError(SubmitRefusedError):
    def __init__(self, *, model: str, team=None):
        self.model = model
        self.team = team
        if team is not None and not team.all_models:
            message = (
                f"{model} is not one of the models the {team.label} may use. Choose another "
                "model, or charge the video elsewhere."
            )
        else:
            message = f"{model} is not available in this studio any more. Choose another model."
        super().__init__(message)


class ChargeRefusedError(SubmitRefusedError):
    """The place a job was to be charged is not one the person may charge."""


class StorageQuotaError(SubmitRefusedError):
    def __init__(self, *, team, used: int, quota: int):
        from jobs.templatetags.studio import bytes_size

        self.team = team
        super().__init__(
            f"The {team.label}'s storage is full: its videos take {bytes_size(used)} of its "
            f"{bytes_size(quota)} quota, so no new video can be made for it. Delete some of "
            "the team's videos, or ask an admin to raise the quota."
        )


def model_available_check(*, user, model: str, team=None) -> None:
    """Refuse a model that is not in the catalog, that admins hid or kept for staff, or that the
    team the job is charged to may not use."""
    from jobs import selectors

    if not selectors.catalog_models(user=user, team=team).filter(pk=model).exists():
        raise ModelUnavailableError(model=model, team=team)


def charge_check(*, user, team) -> None:
    """Refuse a team the user is not (or no longer) a member of, and a personal job where the
    organization requires every job to be charged to a team (TEAM_REQUIRED)."""
    from jobs.models import Membership

    if team is None:
        if settings.TEAM_REQUIRED:
            raise ChargeRefusedError(
                "This studio charges every video to a team. Choose one of your teams under "
                "Charge to; if you have none, ask an admin to add you to one."
            )
        return
    table = Membership._meta.db_table
    sql = f"SELECT 1 FROM {table} WHERE team_id = %s AND user_id = %s LIMIT 1"  # noqa: S608
    # As its field stores it (on SQLite a UUID is 32 hex characters).
    team_id = Membership._meta.get_field("team").get_db_prep_value(team.pk, connection)
    if not _found(sql, [team_id, user.pk]):
        raise ChargeRefusedError(
            f"You are not a member of the {team.label}, so you cannot charge videos to it."
        )


def storage_quota_check(*, team) -> None:
    """Refuse a new video for a team whose files take its storage quota or more. The size of
    a video is not known before it is made, so a team just under its quota may start a few
    that take it over; the next submit is refused."""
    if team is None or team.storage_quota_gb is None:
        return
    from jobs.selectors import storage_for_team

    use = storage_for_team(team=team)
    if use.is_full:
        raise StorageQuotaError(team=team, used=use.used, quota=use.quota)


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


def active_jobs_check(*, user, counted_group=None) -> None:
    """Refuse when the user already has JOB_ACTIVE_LIMIT submits queued or running: a job
    made alone counts as one, and so does a group (a comparison, variations, a batch) while
    any of its jobs is queued or running. A 100-row batch is therefore accepted under a limit
    of 10, as one submit, and its jobs wait their turn in the queue with everyone else's; the
    group's size is bounded by its kind (JobGroup.SIZES) and its cost by the budgets.

    Must run inside the submit's transaction, after owner_lock has locked the user's row:
    submits for one user then count and insert one at a time, so two at once cannot both
    squeeze under the cap. One query on the job_owner_created index.

    `counted_group`: an existing group the submit adds jobs to (a batch's retried rows). It is
    the same one submit whether or not it still has jobs live, so it is left out of the count
    and the submit is refused only when the others already fill the cap.
    """
    limit = settings.JOB_ACTIVE_LIMIT
    if limit <= 0:
        return
    active = Job.objects.filter(owner=user, status__in=(Job.Status.QUEUED, Job.Status.RUNNING))
    if counted_group is not None:
        active = active.exclude(group=counted_group)
    counts = active.aggregate(
        alone=Count("pk", filter=Q(group__isnull=True)),
        groups=Count("group", distinct=True),
    )
    if counts["alone"] + counts["groups"] >= limit:
        raise TooManyActiveJobsError(limit=limit)


def owner_lock(*, owner) -> None:
    """Lock the submitting person's row for the submit's transaction (FOR NO KEY UPDATE): their
    account's deletion, which locks it FOR UPDATE, goes first or waits, and a submit that finds
    the account gone is refused (AccountGoneError) instead of saving a broken reference. Their
    own submits take turns here too, so two never take one turn in the fair queue."""
    lock = " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""
    table = get_user_model()._meta.db_table
    if not _found(f"SELECT 1 FROM {table} WHERE id = %s{lock}", [owner.pk]):  # noqa: S608
        raise AccountGoneError()


def _found(sql: str, params: list) -> bool:
    """Whether a statement finds a row. Raw SQL for the submit's own few checks by key: the
    ORM spends about 0.6 ms of CPU building each (bench/budgets.py), far more than the
    statement's own time, and every submit in the studio runs them."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() is not None
