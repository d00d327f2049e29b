"""Jobs, the ledger of what they cost, the admins' notices, and submit keys."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


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
    # None once its maker deleted their account (services.account_deletion): a team's video
    # stays with the team, and a personal one stays only as a deleted row for its cost.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    # Where the job is charged: the team it was charged to, or None for its owner's personal
    # space. Holds, settlement, reviews and the CSV follow this field, never the owner's current
    # memberships, so a membership change never rewrites history (DESIGN.md, Organizations).
    team = models.ForeignKey(
        "Team", null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    # The API token that submitted it, if any: the token's own budget counts its holds.
    token = models.ForeignKey(
        "ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    # The provider key its last attempt called with (a key minted for its place, with
    # IMAGEROUTER_MANAGEMENT_KEY set); None: the studio's own IMAGEROUTER_API_KEY.
    provider_key = models.ForeignKey(
        "ProviderKey", null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    # The comparison, variations or batch it was made in (None: made alone), and its place
    # there (0 first: a comparison's models in the order chosen, a batch's rows in order).
    # Indexed with its place below (job_group_position), not on its own.
    group = models.ForeignKey(
        "JobGroup",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jobs",
        db_index=False,
    )
    group_position = models.PositiveIntegerField(null=True, blank=True)

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
    # Its turn in the fair queue (services/queue.py): the round of the round robin across the
    # people with queued jobs in which it starts. A person's jobs take consecutive rounds, a
    # newcomer joins the round being served, and a worker claims the earliest round first.
    queue_round = models.BigIntegerField(default=0)
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
    # Bytes its files (video, poster, input image) take in storage, added as each is stored and
    # set to 0 when they are deleted. None: a job from before sizes were recorded, not measured
    # yet (manage.py record_storage_sizes measures them).
    stored_bytes = models.BigIntegerField(null=True, blank=True, default=0)
    # Starred: kept for ever, whatever the retention (RETENTION_DAYS, or its team's).
    starred_at = models.DateTimeField(null=True, blank=True)
    # When retention deleted its files (services.retention). The row, its prompt and its ledger
    # entry stay; pages say "expired on DATE".
    expired_at = models.DateTimeField(null=True, blank=True)
    # The retention, in days, that the owner was last warned about (the email seven days before
    # expiry). A warning is sent again only if the retention that applies changes, or after
    # the star is taken off.
    expiry_warned_days = models.PositiveIntegerField(null=True, blank=True)
    # API jobs only: where to POST the job's final state (the request's webhook_url, or its
    # token's default, checked at submit), and the studio's address as the caller reached it,
    # for the links in that payload (a worker has no request to ask).
    webhook_url = models.URLField(max_length=2000, blank=True)
    api_base_url = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # My videos: a user's jobs, newest first.
            models.Index(fields=["owner", "-created_at"], name="job_owner_created"),
            # Team videos: a team's jobs, newest first.
            models.Index(fields=["team", "-created_at"], name="job_team_created"),
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
            # A group's jobs in their order (the group page, its zip, its gallery entry), and
            # the gallery's test for a group's first visible job (selectors.jobs.job_search).
            models.Index(
                fields=["group", "group_position"],
                name="job_group_position",
                condition=models.Q(group__isnull=False),
            ),
            # The fair queue's claim (services.queue.job_claim_next): the queued job of the
            # earliest round, oldest first; and a queued job's place in the studio's queue.
            models.Index(
                fields=["queue_round", "created_at"],
                name="job_queue_turn",
                condition=models.Q(status="queued"),
            ),
            # The round being served (services.queue.queue_round_next): the latest round a
            # worker has claimed.
            models.Index(
                fields=["queue_round"],
                name="job_round_started",
                condition=models.Q(started_at__isnull=False),
            ),
            # A person's latest round (services.queue.queue_round_next): of their jobs queued
            # or started, not of those canceled before they ran, which had no turn.
            models.Index(
                fields=["owner", "queue_round"],
                name="job_owner_round",
                condition=models.Q(status="queued") | models.Q(started_at__isnull=False),
            ),
            # Retention (selectors.retention.expiring_jobs): jobs that may still expire, oldest
            # first, for the sweeper's deletions, the expiry warnings and the gallery's filter.
            models.Index(
                fields=["created_at"],
                name="job_may_expire",
                condition=models.Q(
                    deleted_at__isnull=True, expired_at__isnull=True, starred_at__isnull=True
                ),
            ),
            # The galleries (selectors.jobs.gallery_page and gallery_entry_count), My videos and
            # Team videos: a space's page of ids, its count, its filters (status, model, starred,
            # expired) and its storage (selectors.storage_for_space), read from the index alone
            # on PostgreSQL (INCLUDE; SQLite builds them without it). The prompt search's
            # trigram index is PostgreSQL's only: migration 0020.
            models.Index(
                fields=["owner", "-created_at", "-id"],
                name="job_gallery_owner",
                condition=models.Q(deleted_at__isnull=True),
                include=[
                    "team",
                    "group",
                    "group_position",
                    "status",
                    "model",
                    "starred_at",
                    "expired_at",
                    "stored_bytes",
                ],
            ),
            models.Index(
                fields=["team", "-created_at", "-id"],
                name="job_gallery_team",
                condition=models.Q(deleted_at__isnull=True, team__isnull=False),
                include=[
                    "owner",
                    "group",
                    "group_position",
                    "status",
                    "model",
                    "starred_at",
                    "expired_at",
                    "stored_bytes",
                ],
            ),
            # The gallery's model filter offers the models of the space's jobs
            # (selectors.jobs.job_models): a skip scan, one probe per model.
            models.Index(
                fields=["owner", "model"],
                name="job_models_owner",
                condition=models.Q(deleted_at__isnull=True),
                include=["team"],
            ),
            models.Index(
                fields=["team", "model"],
                name="job_models_team",
                condition=models.Q(deleted_at__isnull=True, team__isnull=False),
                include=["owner"],
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

    @property
    def has_files(self) -> bool:
        return bool(self.video or self.poster or self.input_image)

    @property
    def retention_days(self) -> int | None:
        """Days its files are kept: its team's retention, or the studio's (RETENTION_DAYS);
        None for ever. Reads `team`: fetch it with the job (select_related)."""
        if self.team_id is not None:
            return self.team.effective_retention_days
        return settings.RETENTION_DAYS

    @property
    def expires_at(self):
        """When retention will delete its files; None if never: starred, still live, without
        files, expired or deleted already, or kept for ever where it is charged."""
        if (
            self.starred_at is not None
            or self.expired_at is not None
            or self.deleted_at is not None
            or not self.is_terminal
            or not self.has_files
        ):
            return None
        days = self.retention_days
        return None if days is None else self.created_at + timedelta(days=days)

    @property
    def expires_soon(self) -> bool:
        """Within the EXPIRY_WARNING_DAYS before its files are deleted: the gallery flags it."""
        expires = self.expires_at
        warning = timedelta(days=settings.EXPIRY_WARNING_DAYS)
        return expires is not None and expires - timezone.now() <= warning


class Notice(models.Model):
    """Something an admin must act on, such as the provider account running out of credit."""

    class Kind(models.TextChoices):
        INSUFFICIENT_CREDITS = "insufficient_credits", "Insufficient credits"
        # A provider key's cap refused a call the studio's own budget allowed: the studio's
        # accounting and the provider's disagree.
        PROVIDER_CAP = "provider_cap", "Provider-side cap reached"

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
    # None once the person deleted their account: the entry stays, so every total stays the
    # same, but no longer names them.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Copied from the job when the entry is written: where the cost is charged.
    team = models.ForeignKey(
        "Team", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    token = models.ForeignKey(
        "ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Copied from the job: the provider key the charge landed on (None: IMAGEROUTER_API_KEY).
    provider_key = models.ForeignKey(
        "ProviderKey", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
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
            # A team's review, and the staff review's drill-down to a team.
            models.Index(fields=["team", "created_at"], name="cost_team_created"),
            # Reconciliation's row per provider key: its entries, and those in its window.
            models.Index(fields=["provider_key", "created_at"], name="cost_provider_key"),
            # Reconciliation: the entries still to check.
            models.Index(
                fields=["created_at"],
                name="cost_pending",
                condition=models.Q(reconciliation="pending"),
            ),
        ]

    def __str__(self):
        return f"{self.model} {self.outcome} {self.cost}"


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
