"""Share links: an owner opts in to let anyone holding a secret URL watch one finished video."""

import secrets

from jobs.models import Job

# 32 random bytes: 43 URL-safe characters, far too many to guess, within share_token's 64.
TOKEN_BYTES = 32


class NotShareableError(Exception):
    """Only a finished video that still exists can be shared."""


def share_create(*, job: Job) -> str:
    """Give a succeeded job a share link, and return its token.

    1. Set a new random token in one conditional UPDATE: the job must still be SUCCEEDED, not
       deleted, not expired, and not shared already.
    2. If no row changed because it is shared already (a second click, or another tab), keep the
       link that may have been sent out and return it.
    3. Otherwise the job cannot be shared: raise NotShareableError.

    A revoked token is gone from the row, so sharing again always makes a new one and an old
    link never works again.
    """
    token = secrets.token_urlsafe(TOKEN_BYTES)
    shareable = Job.objects.filter(
        pk=job.pk, status=Job.Status.SUCCEEDED, deleted_at__isnull=True, expired_at__isnull=True
    )
    if shareable.filter(share_token__isnull=True).update(share_token=token):
        return token
    existing = shareable.values_list("share_token", flat=True).first()
    if existing:
        return existing
    raise NotShareableError("Only a finished video can be shared.")


def share_revoke(*, job: Job) -> bool:
    """End a job's share link at once. False if it was not shared."""
    return bool(Job.objects.filter(pk=job.pk, share_token__isnull=False).update(share_token=None))
