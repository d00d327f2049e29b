"""The job behind a public share link."""

from django.db.models import Exists, OuterRef, Q
from django.shortcuts import get_object_or_404

from jobs.models import Job, Membership


def job_get_shared(*, token: str) -> Job:
    """The job behind a share link, for anyone holding it. 404 for an unknown or revoked token,
    and for a job that is deleted or not a finished video, so a dead link says nothing.

    A link is shared in its owner's name, so a team video's link works only while its owner is
    still in the team: removing them takes away what they handed out too, which nobody else
    could revoke (the video itself stays with the team).

    A unique index on share_token answers it (and the membership_team_user constraint the
    check); the token's 256 random bits are the secret."""
    owner_in_team = Membership.objects.filter(
        team_id=OuterRef("team_id"), user_id=OuterRef("owner_id")
    )
    jobs = Job.objects.filter(status=Job.Status.SUCCEEDED, deleted_at__isnull=True).filter(
        Q(team__isnull=True) | Q(Exists(owner_in_team))
    )
    return get_object_or_404(jobs, share_token=token)
