"""Storage used: the bytes of the files (videos, posters, input images) kept for a person or a
team, summed from each job's stored_bytes. Scoped as the galleries are: a person reads their
own figure, a team's figure is read only after the caller checked the team is theirs to see."""

from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Q, Sum

from jobs.models import Job, Membership, StorageTotal, Team

from .jobs import Space, space_jobs


@dataclass(frozen=True)
class StorageUse:
    used: int  # bytes
    unmeasured: int  # jobs with files stored before sizes were recorded (not in `used`)
    quota: int | None = None  # bytes; None: no quota

    @property
    def is_full(self) -> bool:
        return self.quota is not None and self.used >= self.quota

    @property
    def share(self) -> int | None:
        """Whole percent of the quota used, for the bar; None without a quota."""
        if not self.quota:
            return None
        return min(100, round(100 * self.used / self.quota))


def _use(jobs, quota: int | None = None) -> StorageUse:
    figures = jobs.aggregate(
        used=Sum("stored_bytes", default=0),
        unmeasured=Count("pk", filter=Q(stored_bytes__isnull=True)),
    )
    return StorageUse(used=figures["used"], unmeasured=figures["unmeasured"], quota=quota)


def storage_for_space(*, space: Space) -> StorageUse:
    """What a gallery's files take: My videos' (the person's personal videos and the team
    videos they made while they are in that team), or a team's, with its quota. On
    PostgreSQL from StorageTotal's few rows for the space (storage_totals), elsewhere summed
    from its jobs on the job_owner_created or job_team_created index."""
    quota = space.team.storage_quota_bytes if space.team is not None else None
    if connection.vendor != "postgresql":
        return _use(space_jobs(space=space), quota)
    if space.team is not None:
        return storage_totals("scope = %s", [f"team:{space.team.pk}"], quota)
    # The person's own space, and what they made for each team they are in now.
    return storage_totals(
        f"scope = %s OR scope IN (SELECT 'member:' || team_id || ':' || %s"  # noqa: S608
        f" FROM {Membership._meta.db_table} WHERE user_id = %s)",
        [f"user:{space.user.pk}", space.user.pk, space.user.pk],
        quota,
    )


def storage_for_team(*, team: Team) -> StorageUse:
    """Every file of the team's videos, whoever made them, against its quota: the quota check
    at submit, and the admin. Only for callers that checked who asks (or need no check)."""
    if connection.vendor != "postgresql":
        return _use(Job.objects.filter(team=team), team.storage_quota_bytes)
    return storage_totals("scope = %s", [f"team:{team.pk}"], team.storage_quota_bytes)


def storage_totals(where: str, params: list, quota: int | None) -> StorageUse:
    """The StorageTotal rows of the scopes `where` picks, added up: what the jobs table's
    trigger (migration 0024) keeps equal to their jobs' stored_bytes, in a few rows however
    many jobs there are (bench/gallery.py: 15-25 ms for a team of 100,000 summed, 1 ms read)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(SUM(used), 0), COALESCE(SUM(unmeasured), 0)"  # noqa: S608
            f" FROM {StorageTotal._meta.db_table} WHERE {where}",
            params,
        )
        used, unmeasured = cursor.fetchone()
    return StorageUse(used=int(used), unmeasured=int(unmeasured), quota=quota)


def storage_for_user(*, user) -> StorageUse:
    """Every file of the videos `user` made, personal and team alike (the admin's figure)."""
    return _use(Job.objects.filter(owner=user))


def jobs_unmeasured():
    """Jobs with files stored before sizes were recorded, oldest first, with only what
    measuring them needs (manage.py record_storage_sizes)."""
    jobs = Job.objects.filter(stored_bytes__isnull=True).order_by("created_at", "pk")
    return jobs.only("pk", "video", "poster", "input_image", "stored_bytes")
