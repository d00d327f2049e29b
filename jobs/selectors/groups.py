"""Reads of job groups (comparisons, variations, batches) for the person asking. A group is seen
by exactly those who see its jobs: every job of a group is charged to the group's place by its
owner, so the group follows the same rule (jobs.visible_to)."""

from django.db.models import Exists, OuterRef, Q
from django.shortcuts import get_object_or_404

from jobs.models import Job, JobGroup, Membership

from .jobs import managed_by


def _group_visible_to(user) -> Q:
    """visible_to's rule, for a group: its owner while personal, its team's current members."""
    teams = Membership.objects.filter(user=user).values("team_id")
    return Q(team__isnull=True, owner=user) | Q(team_id__in=teams)


def group_get_for_user(*, user, group_id) -> JobGroup:
    """The group, if `user` may see it or is staff; otherwise 404."""
    groups = JobGroup.objects.all()
    if not user.is_staff:
        groups = groups.filter(_group_visible_to(user))
    return get_object_or_404(groups.select_related("owner", "team"), pk=group_id)


def group_get_for_owner(*, user, group_id) -> JobGroup:
    """The group, only for its owner while they may still see it: sharing acts in their name."""
    groups = JobGroup.objects.filter(_group_visible_to(user), owner=user)
    return get_object_or_404(groups.select_related("team"), pk=group_id)


def group_jobs(*, group: JobGroup):
    """The group's jobs that are not deleted, in their order (the job_group_position index).
    Only for a group the caller got through group_get_for_user (its jobs share its place)."""
    jobs = Job.objects.filter(group=group, deleted_at__isnull=True)
    return jobs.select_related("owner", "team").order_by("group_position", "created_at")


def group_job_get(*, group: JobGroup, job_id) -> Job:
    """One of the group's jobs (not deleted), or 404."""
    return get_object_or_404(group_jobs(group=group), pk=job_id)


def group_jobs_for_delete(*, user, group: JobGroup):
    """The group's finished and live jobs that `user` may delete: their own, and for a manager
    of its team every one (as job_get_for_delete rules)."""
    jobs = group_jobs(group=group)
    return jobs.filter(Q(owner=user) | managed_by(user))


def group_get_shared(*, token: str) -> JobGroup:
    """The group behind a share link, for anyone holding it; 404 for an unknown or revoked
    token, and, as for one video's link (job_get_shared), for a team's group whose owner is no
    longer in the team. The unique index on share_token answers it."""
    owner_in_team = Membership.objects.filter(
        team_id=OuterRef("team_id"), user_id=OuterRef("owner_id")
    )
    groups = JobGroup.objects.filter(Q(team__isnull=True) | Q(Exists(owner_in_team)))
    return get_object_or_404(groups, share_token=token)


def group_shared_jobs(*, group: JobGroup):
    """What a group's share link shows: its finished videos, not deleted nor expired."""
    return (
        group_jobs(group=group)
        .filter(status=Job.Status.SUCCEEDED, expired_at__isnull=True)
        .exclude(video="")
    )


def group_leads_only(jobs):
    """Narrow a gallery's queryset of jobs to one entry per group: a job made alone, or the
    first of its group's jobs that the same queryset holds (the lowest group_position among
    those matching its filters). A correlated NOT EXISTS on the job_group_position index.

    The same rule is written once more in SQL, over the matches a gallery's count reads
    (jobs._entries_read): change both, and test_the_count_and_every_page_follow_the_group_rule
    holds them equal."""
    # A retry shares its failed job's place (services.job_retry): the older one leads.
    earlier = jobs.model.objects.filter(
        Q(group_position__lt=OuterRef("group_position"))
        | Q(group_position=OuterRef("group_position"), created_at__lt=OuterRef("created_at")),
        pk__in=jobs.values("pk"),
        group_id=OuterRef("group_id"),
    )
    return jobs.filter(Q(group__isnull=True) | ~Exists(earlier))


def group_members_by_group(*, jobs_base, group_ids) -> dict:
    """The jobs (from `jobs_base`, the gallery's scoped queryset) of each group, in order, by
    group id: what a gallery entry expands to."""
    members = {}
    rows = jobs_base.filter(group_id__in=group_ids).order_by(
        "group_id", "group_position", "created_at"
    )
    for job in rows.select_related("owner", "team"):
        members.setdefault(job.group_id, []).append(job)
    return members
