"""A job's stored files (video, poster, input image): taking them off the job and out of storage,
once, on local disk and S3 alike, whoever asks (a person deleting a job, retention, and an
account's deletion).

A file is deleted only after no row points at it any more, and its deletion is written down
(StoredFileDeletion) in the same transaction that takes it off the row, so a crash between the
two leaves a row for the sweeper rather than a file nobody knows about.
"""

import logging
from datetime import timedelta

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from jobs.models import Job, StoredFileDeletion

logger = logging.getLogger(__name__)

# A deletion is held this long by the process deleting it; one that died frees it then.
CLAIM_SECONDS = 60
# Deletions that are older than this were left by a crash or a refusing storage: the sweeper
# takes them (younger ones are being deleted right after their commit).
RETRY_AFTER = timedelta(minutes=2)
# Waits after a failed attempt, in seconds (the last one repeats): a storage that is away is
# not asked every minute.
BACKOFF = (60, 300, 1800, 3600)
RETRY_BATCH = 500


def job_files_delete(*, job_id, condition: Q | None = None, **changes) -> bool:
    """Take a job's files off it and delete them from storage. Returns whether it changed the
    job (False: the job is gone, or no longer meets `condition`).

    1. In one transaction, lock the job's row if it still meets `condition` (the caller's
       rule, such as "finished and not deleted", or "not starred and not expired"), so that a
       poster saved or a star pressed at the same moment waits, then sees the change.
    2. Clear its file fields and stored_bytes, apply the caller's `changes` (deleted_at,
       expired_at, ...), and write a StoredFileDeletion for each file, in that transaction.
    3. After it, delete each file from storage and its StoredFileDeletion (file_deletion_run).
       A storage error is logged and left to the sweeper (file_deletions_retry); the job's
       change stands.

    Call it outside a transaction: as job_delete always did, the files go as soon as the
    job's own transaction is done.
    """
    with transaction.atomic():
        rows = Job.objects.filter(pk=job_id)
        if condition is not None:
            rows = rows.filter(condition)
        # Only the job's row: a condition may join its team, which cannot be locked (and need not).
        job = rows.select_for_update(of=("self",)).first()
        if job is None:
            return False
        names = [f.name for f in (job.video, job.poster, job.input_image) if f]
        Job.objects.filter(pk=job.pk).update(
            video="", poster="", input_image="", stored_bytes=0, **changes
        )
        deletions = stored_files_queue(names=names)
    stored_files_delete(deletions=deletions)
    return True


def stored_files_queue(*, names) -> list[StoredFileDeletion]:
    """Write down, in the caller's transaction (the one that takes the names off their rows),
    that these files must go, held by the caller for CLAIM_SECONDS; the caller deletes them
    with stored_files_delete once it has committed. Should it die first, the sweeper does."""
    return [
        StoredFileDeletion.objects.create(name=name, attempts=1, claimed_until=_lease())
        for name in names
    ]


def stored_files_delete(*, deletions) -> int:
    """Delete queued files from storage, after the commit that queued them; how many went. A
    storage error is kept on its row for the sweeper and never stops the others."""
    return sum(_delete(deletion) for deletion in deletions)


def file_deletions_retry(*, limit: int = RETRY_BATCH) -> int:
    """The sweeper's step: delete the files whose deletion a crash or a storage error left
    behind. Two sweepers at once delete each once: each claims a row first. Returns how many
    files went."""
    now = timezone.now()
    waiting = StoredFileDeletion.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        created_at__lt=now - RETRY_AFTER,
    ).order_by("created_at")
    deleted = 0
    for pk in waiting.values_list("pk", flat=True)[:limit]:
        claimed = (
            StoredFileDeletion.objects.filter(pk=pk)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .update(claimed_until=_lease(), attempts=F("attempts") + 1)
        )
        if claimed:
            deleted += _delete(StoredFileDeletion.objects.get(pk=pk))
    return deleted


def _lease():
    return timezone.now() + timedelta(seconds=CLAIM_SECONDS)


def _delete(deletion: StoredFileDeletion) -> bool:
    """Delete one claimed file from storage, then its row. Deleting a file that is already gone
    succeeds (the local and S3 storages both say nothing), so a crash after the file went and
    before the row did costs one harmless repeat. Any storage error is kept on the row, with
    the next try after a backoff; it never stops the caller."""
    try:
        default_storage.delete(deletion.name)
    except Exception as exc:  # the storage's own errors (botocore's, OSError...) vary by backend
        wait = BACKOFF[min(deletion.attempts, len(BACKOFF)) - 1]
        StoredFileDeletion.objects.filter(pk=deletion.pk).update(
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            claimed_until=timezone.now() + timedelta(seconds=wait),
        )
        logger.warning(
            "file %s not deleted (attempt %d): %s", deletion.name, deletion.attempts, exc
        )
        return False
    StoredFileDeletion.objects.filter(pk=deletion.pk).delete()
    return True
