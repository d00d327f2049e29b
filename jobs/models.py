import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class VideoModel(models.Model):
    """One video model from the provider's catalog (`GET /v1/models?type=video`)."""

    class Pricing(models.TextChoices):
        FIXED = "fixed", "fixed"
        CALCULATED = "calculated", "calculated"
        POST_GENERATION = "post_generation", "set after generation"

    class Visibility(models.TextChoices):
        EVERYONE = "everyone", "Everyone"
        STAFF = "staff", "Staff only"
        HIDDEN = "hidden", "Hidden"

    id = models.CharField(primary_key=True, max_length=200)  # the provider's id, e.g. ir/test-video
    name = models.CharField(max_length=200)
    pricing = models.CharField(max_length=20, choices=Pricing.choices)
    price_min = models.DecimalField(max_digits=12, decimal_places=6)
    price_average = models.DecimalField(max_digits=12, decimal_places=6)
    price_max = models.DecimalField(max_digits=12, decimal_places=6)
    seconds = models.JSONField(default=list)  # allowed durations, e.g. [5, 10]
    default_seconds = models.PositiveIntegerField(null=True, blank=True)
    sizes = models.JSONField(default=list)  # e.g. ["1280x720", "720x1280"]; empty means any
    accepts_image = models.BooleanField(default=False)
    synced_at = models.DateTimeField()
    # Set by admins, kept across syncs: who may choose this model on the form.
    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.EVERYONE
    )

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.id

    @property
    def is_free(self) -> bool:
        return self.price_max == 0


class Job(models.Model):
    """One video generation, from submit to stored file.

    ```
    QUEUED ──claim──▶ RUNNING ──API ok──▶ STORING ──file saved──▶ SUCCEEDED
       │                 │                   └──store failed (retried; never generates again)──▶ FAILED
       │                 ├──provider refused or failed (refunded, cost 0)──▶ FAILED
       │                 ├──connect error or 429 (nothing done)──▶ QUEUED again, after a wait
       │                 └──timeout, dropped connection, worker lost (outcome unknown)──▶ FAILED,
       │                                                     flagged with a possible cost
       └──cancel (owner, while QUEUED)──▶ CANCELED
    ```
    Every transition is a conditional UPDATE naming the status it expects (see services.py). The
    sweeper (services.sweep) moves jobs whose worker or message was lost.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        STORING = "storing", "Storing"
        SUCCEEDED = "succeeded", "Done"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    class ResponseFormat(models.TextChoices):
        URL = "url", "url"
        B64_JSON = "b64_json", "b64_json"
        B64_EPHEMERAL = "b64_ephemeral", "private (b64_ephemeral)"

    TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELED})
    LIVE = frozenset({Status.QUEUED, Status.RUNNING, Status.STORING})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )

    prompt = models.TextField(blank=True)
    model = models.CharField(max_length=200)
    size = models.CharField(max_length=20, default="auto")
    seconds = models.CharField(max_length=10, default="auto")
    response_format = models.CharField(
        max_length=20, choices=ResponseFormat.choices, default=ResponseFormat.URL
    )
    input_image = models.FileField(upload_to="uploads/%Y/%m/", blank=True)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    attempt = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True)  # set while waiting to retry
    error = models.TextField(blank=True)
    outcome_unknown = models.BooleanField(default=False)  # failed in a way that may have cost money

    # The most this job may cost, reserved against the owner's budget while it is live. Every
    # update that ends the job sets it back to 0.
    hold = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    # For an unknown outcome: the most the provider may have charged (the model's top price).
    possible_cost = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)  # as the provider reported it
    provider_url = models.URLField(max_length=2000, blank=True)  # public to anyone: never shown
    video = models.FileField(upload_to="videos/%Y/%m/", blank=True)
    # A JPEG of the first frame, extracted with ffmpeg when the video is stored.
    poster = models.FileField(upload_to="posters/%Y/%m/", blank=True)
    # The secret in this job's share link; None when not shared. Revoking clears it, and sharing
    # again makes a new one, so a revoked link never works again.
    share_token = models.CharField(max_length=64, null=True, blank=True, unique=True)

    created_at = models.DateTimeField(auto_now_add=True)
    # When a message was last sent for this job (to run it or to store it). The sweeper re-sends
    # one only when this is old, so a lost message is replaced without flooding the queue.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Deleting a job removes its files and prompt but keeps the row, so its cost stays counted.
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # My videos: a user's jobs, newest first.
            models.Index(fields=["owner", "-created_at"], name="job_owner_created"),
            # The admin's status filter, and a queued job's place in the queue.
            models.Index(fields=["status", "created_at"], name="job_status_created"),
            # The typical wait for a model: its latest successes (selectors.typical_wait).
            models.Index(
                fields=["model", "-finished_at"],
                name="job_model_succeeded",
                condition=models.Q(status="succeeded"),
            ),
            # The sweeper: live jobs whose run or message is overdue.
            models.Index(
                fields=["status", "enqueued_at"],
                name="job_live_enqueued",
                condition=models.Q(status__in=["queued", "running", "storing"]),
            ),
        ]

    def __str__(self):
        return f"{self.model} job {self.id}"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def is_free(self) -> bool:
        return self.cost is not None and self.cost == 0

    @property
    def elapsed_seconds(self) -> int:
        """Whole seconds since the current attempt started (0 before it starts)."""
        if self.started_at is None:
            return 0
        end = self.finished_at or timezone.now()
        return max(0, int((end - self.started_at).total_seconds()))

    @property
    def latency_seconds(self) -> str:
        return f"{self.latency_ms / 1000:.1f}" if self.latency_ms is not None else ""


class Notice(models.Model):
    """Something an admin must act on, such as the provider account running out of credit."""

    class Kind(models.TextChoices):
        INSUFFICIENT_CREDITS = "insufficient_credits", "Insufficient credits"

    kind = models.CharField(max_length=40, choices=Kind.choices)
    message = models.TextField()
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open notice per kind, however many jobs hit the same problem at once.
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(resolved_at__isnull=True),
                name="notice_one_open_per_kind",
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M}"


class CostEntry(models.Model):
    """The ledger: one entry per job that was sent to the provider (a unique constraint says so).

    `cost` is what counts as spent: the provider's reported cost, 0 for a refused or failed call
    and for one the provider never took (connection refused or rate limited, every try),
    and for an unknown outcome 0 until an admin reconciles it. An unknown outcome carries
    `possible_cost` (the model's top price) and stays `pending` until then; budgets count pending
    possible costs as spent, to be safe.
    """

    class Outcome(models.TextChoices):
        CHARGED = "charged", "charged"
        REFUNDED = "refunded", "refused or failed (not charged)"
        # Connect errors or rate limits until the studio gave up: the provider did nothing.
        NOT_PROCESSED = "not_processed", "never reached the provider (not charged)"
        UNKNOWN = "unknown", "outcome unknown"

    class Reconciliation(models.TextChoices):
        NONE = "", "—"
        PENDING = "pending", "to check"
        CHARGED = "charged", "checked: charged"
        NOT_CHARGED = "not_charged", "checked: not charged"

    job = models.OneToOneField(Job, on_delete=models.PROTECT, related_name="cost_entry")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    model = models.CharField(max_length=200)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    possible_cost = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    reconciliation = models.CharField(
        max_length=20, choices=Reconciliation.choices, default=Reconciliation.NONE, blank=True
    )
    reconciled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reconciled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "cost entries"
        indexes = [
            # The cost review: a period's entries, by day, user or model.
            models.Index(fields=["created_at"], name="cost_created"),
            # A user's spend this month (budgets) and the review's drill-down to a user.
            models.Index(fields=["user", "created_at"], name="cost_user_created"),
            # The review's drill-down to a model.
            models.Index(fields=["model", "created_at"], name="cost_model_created"),
            # Reconciliation: the entries still to check.
            models.Index(
                fields=["created_at"],
                name="cost_pending",
                condition=models.Q(reconciliation="pending"),
            ),
        ]

    def __str__(self):
        return f"{self.model} {self.outcome} {self.cost}"


class Budget(models.Model):
    """A user's monthly spending limit in USD. No row, or no limit, means unlimited."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="budget"
    )
    monthly_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="USD per calendar month (UTC). Empty means no limit.",
    )
    # Touched by every submit: the UPDATE serialises one user's submits, so two of them can never
    # both fit into the same remaining budget (PostgreSQL row lock; SQLite's write lock).
    locked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return (
            f"{self.user}: {self.monthly_limit if self.monthly_limit is not None else 'no limit'}"
        )


class BudgetChange(models.Model):
    """Who changed a budget, when, from what, to what."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    old_limit = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    new_limit = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-changed_at"]

    def __str__(self):
        return f"{self.user}: {self.old_limit} → {self.new_limit}"


class ApiToken(models.Model):
    """A personal key for the ImageRouter-compatible API (`/v1/`), so a script spends its
    owner's budget under their name instead of the team's master ImageRouter key.

    The key itself is shown once, at creation, and never stored: only its SHA-256 (a key has 256
    random bits, so a plain hash is enough; there is nothing to guess). `prefix` is the key's
    first characters, not secret, so people can tell their keys apart in the list. Revoking sets
    `revoked_at`; the row stays, so the list shows what a key was and when it stopped working.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # Every API request looks its key up by this (the unique index answers it).
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"
        indexes = [
            # The token page: a user's tokens, newest first.
            models.Index(fields=["user", "-created_at"], name="apitoken_user_created"),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def hash_key(key: str) -> str:
        """What the database keeps of a key. A key carries 256 random bits, so a fast hash is
        safe: there is no dictionary to try, unlike with a password."""
        return hashlib.sha256(key.encode()).hexdigest()


class SubmitKey(models.Model):
    """A submit's idempotency key and the job it made, so that a repeat never pays twice.

    The API's `Idempotency-Key` header (`api:<key>`) or the generate form's token
    (`form:<token>:<fingerprint>`). A repeat by the same person within
    services.idempotency.SUBMIT_KEY_LIFETIME gets this job back instead of a new one. The key is
    saved in the same transaction as the job, before it: two racing submits with one key meet
    at the unique constraint, and the second waits for the first and then gets its job.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=400)
    # SHA-256 of the request's fields and image: the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    job = models.ForeignKey(Job, null=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # A submit looks its key up by this, and racing submits with one key meet here.
            models.UniqueConstraint(fields=["owner", "key"], name="submitkey_owner_key"),
        ]
        indexes = [
            # The sweeper deletes keys past their lifetime.
            models.Index(fields=["created_at"], name="submitkey_created"),
        ]

    def __str__(self):
        return f"{self.key} → {self.job_id}"
