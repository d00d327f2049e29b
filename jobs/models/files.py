"""Stored files on their way out: the queue that makes a deletion survive a crash."""

from django.db import models
from django.utils import timezone


class StoredFileDeletion(models.Model):
    """A file in storage (local disk or S3) that no row points at any more and that must go.

    services.files writes one in the same transaction that takes the name off its job, and
    deletes the file and the row right after it commits. A worker that dies in between, or a
    storage that refuses (S3 away), leaves the row for the sweeper, which tries again: nothing
    is left behind, and nothing is deleted while a row still points at it."""

    name = models.CharField(max_length=255)  # the storage name, as FileField keeps it
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    # Held by the process deleting it until then; a process that died frees it at that time.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [
            # The sweeper: the oldest deletions still waiting (files.file_deletions_retry).
            models.Index(fields=["created_at"], name="file_deletion_created"),
        ]

    def __str__(self):
        return self.name
