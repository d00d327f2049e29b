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


class StorageTotal(models.Model):
    """The bytes the jobs of one place keep in storage, in one of a few stripes, kept exact on
    PostgreSQL by a trigger on the jobs table (migration 0024), as HeldTotal is: every insert,
    update or delete of a job that changes its stored_bytes, or where it counts, adds the
    difference here in the same transaction, whichever code (or SQL) made it.

    Scopes: "team:<id>" (every job charged to the team), "member:<team id>:<user id>" (what
    one person made there) and "user:<id>" (a person's personal jobs). A gallery's storage
    figure and a team's quota check read a few of these rows (selectors.storage) instead of
    summing the stored_bytes of a team's 100,000 jobs on every page and every submit (15-25 ms:
    bench/gallery.py). A deleted job keeps no files and counts 0 (services.files). The stripe is
    the owner's id modulo STRIPES, so two people's stores never wait for each other's row. On
    SQLite (no trigger) the figures are summed from the jobs as before.
    """

    STRIPES = 16

    scope = models.CharField(max_length=120)
    stripe = models.PositiveSmallIntegerField()
    used = models.BigIntegerField(default=0)  # bytes
    unmeasured = models.IntegerField(default=0)  # jobs stored before sizes were recorded

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "stripe"], name="storagetotal_scope_stripe"),
        ]

    def __str__(self):
        return f"{self.scope} stripe {self.stripe}: {self.used} bytes"
