"""The job behind a public share link."""

from django.shortcuts import get_object_or_404

from jobs.models import Job


def job_get_shared(*, token: str) -> Job:
    """The job behind a share link, for anyone holding it. 404 for an unknown or revoked token,
    and for a job that is deleted or not a finished video, so a dead link says nothing.

    A unique index on share_token answers it; the token's 256 random bits are the secret."""
    jobs = Job.objects.filter(status=Job.Status.SUCCEEDED, deleted_at__isnull=True)
    return get_object_or_404(jobs, share_token=token)
