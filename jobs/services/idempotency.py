"""Submitting once: a repeated submit gets the first one's job back, never a second paid job.

Clients retry: an HTTP library after a 500 or a dropped connection, a person who double-clicks
Generate or sends the form again after an error. Each repeat carries the same key (the API's
`Idempotency-Key` header, the form's hidden token), and the studio answers it with the job that
the first submit made, as payment and AI APIs do.
"""

import hashlib
import json
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.models import Job, SubmitKey

from .lifecycle import job_create
from .limits import SubmitRefusedError

# How long a key is remembered. A repeat after that is a new submit.
SUBMIT_KEY_LIFETIME = timedelta(hours=24)


class SubmitKeyReusedError(Exception):
    """The key was used within its lifetime for a different request."""

    def __init__(self, *, job: Job):
        self.job = job
        super().__init__(
            "This Idempotency-Key was already used for a different request (another body). "
            "Send a new key for a new request, or the same body to get the first job back."
        )


def request_fingerprint(fields: dict, images=()) -> str:
    """SHA-256 over a request's fields and its images' bytes (or URL text): what makes two
    submits "the same request", however their bodies were encoded (JSON, multipart, any
    boundary or key order)."""
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode())
    for image in images:
        digest.update(b"\0image\0")
        if isinstance(image, str):
            digest.update(image.encode("utf-8", "surrogatepass"))
            continue
        image.seek(0)
        for chunk in iter(lambda image=image: image.read(1024 * 1024), b""):
            digest.update(chunk)
        image.seek(0)
    return digest.hexdigest()


def submitted_job(*, owner, key: str, fingerprint: str) -> Job | None:
    """The job an earlier submit with `key` made within SUBMIT_KEY_LIFETIME, or None. Raises
    SubmitKeyReusedError when that submit was a different request."""
    entry = (
        SubmitKey.objects.select_related("job")
        .filter(
            owner=owner,
            key=key,
            created_at__gte=timezone.now() - SUBMIT_KEY_LIFETIME,
            job__isnull=False,
        )
        .first()
    )
    if entry is None:
        return None
    if entry.fingerprint != fingerprint:
        raise SubmitKeyReusedError(job=entry.job)
    return entry.job


def job_create_once(*, owner, key: str, fingerprint: str, **job_fields) -> tuple[Job, bool]:
    """(the job, True) for a new submit; (the first submit's job, False) for a repeat.

    1. A key seen within its lifetime answers with its job (or SubmitKeyReusedError for another
       request): nothing is counted, held or sent.
    2. Otherwise, in one transaction: remove the key's expired entry, claim the key (the unique
       constraint makes a racing submit with the same key wait here for this one to commit),
       then job_create, and point the key at the job. A refusal rolls back the key too, so a
       repeat after "over budget" is judged afresh.
    3. A racing submit that lost the claim (IntegrityError), or was refused because the winner's
       hold took the budget, answers with the winner's job.
    """
    earlier = submitted_job(owner=owner, key=key, fingerprint=fingerprint)
    if earlier is not None:
        return earlier, False
    try:
        with transaction.atomic():
            SubmitKey.objects.filter(
                owner=owner, key=key, created_at__lt=timezone.now() - SUBMIT_KEY_LIFETIME
            ).delete()
            claim = SubmitKey.objects.create(owner=owner, key=key, fingerprint=fingerprint)
            job = job_create(owner=owner, **job_fields)
            SubmitKey.objects.filter(pk=claim.pk).update(job=job)
    except (IntegrityError, SubmitRefusedError):
        earlier = submitted_job(owner=owner, key=key, fingerprint=fingerprint)
        if earlier is None:
            raise
        return earlier, False
    return job, True


def submit_keys_expire() -> int:
    """Delete keys past their lifetime (the sweeper, every minute). The jobs stay."""
    deleted, _ = SubmitKey.objects.filter(
        created_at__lt=timezone.now() - SUBMIT_KEY_LIFETIME
    ).delete()
    return deleted
