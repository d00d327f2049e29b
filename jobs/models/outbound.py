"""What the studio sends to others: emails (the outbox), webhooks with their attempts, and
the staff's budget-alert hooks."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from .budgets import BudgetNotice
from .jobs import Job
from .tokens import ApiToken


class OutgoingEmail(models.Model):
    """One email the studio decided to send, kept until it is sent or given up (the outbox).

    `key` names the event it is about ("password-reset:<user>:<token>", "job-ready:<job>"), and
    is unique, so an event makes one message however often it is reported. The text is rendered
    when the message is queued, so what is sent is what was decided. A worker claims a row for
    CLAIM_SECONDS before it talks to the SMTP server; the sweeper re-queues a row whose claim ran
    out unsent (its worker died). `message_id` is fixed per row, so a message sent again after a
    worker died between the server's "250 OK" and the commit carries the same Message-ID, which
    mail clients fold into one."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Given up"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    key = models.CharField(max_length=200, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to = models.EmailField(max_length=254)
    subject = models.CharField(max_length=300)
    text = models.TextField()
    html = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When a worker may try (again); None: at once.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker holds the row until then while it talks to the SMTP server.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "outgoing email"
        indexes = [
            # The sweeper's question: which unsent messages are due?
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="outgoingemail_due",
            ),
        ]

    def __str__(self):
        return f"{self.subject} to {self.to}"

    @property
    def message_id(self) -> str:
        return f"<{self.id}@videostudio>"


class AlertHook(models.Model):
    """An incoming webhook that staff point budget alerts at: Slack's (or Mattermost's, Rocket
    .Chat's, Discord's /slack URL), which takes `{"text": ...}`. Every active hook receives each
    new budget notice once (services.webhooks.budget_alerts_record)."""

    name = models.CharField(max_length=100, help_text="Where it posts: “#studio-budgets on Slack”.")
    url = models.URLField(
        max_length=2000,
        help_text="The incoming-webhook URL, such as https://hooks.slack.com/services/…. It "
        "must be a public address (unless GATEWAY_IMAGE_URLS_PRIVATE allows private ones).",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "budget alert hook"

    def __str__(self):
        return self.name


class WebhookDelivery(models.Model):
    """One event to POST to one URL, until a 2xx answer or it is given up, visibly.

    A job's final state (to its token's webhook, signed per Standard Webhooks) or a budget
    notice (to a staff alert hook, Slack's `{"text"}`). Written in the same transaction as what
    it reports, once (the unique constraints), and sent through the queue after commit. The body
    is rendered once, so every attempt sends the same bytes under the same `webhook-id`.

    ```
    PENDING ──claim (conditional UPDATE)──▶ SENDING ──2xx──▶ DELIVERED
       ▲                                       ├──5xx, 408, 429, timeout, no connection──▶ PENDING
       └──────────── Send again ◀── FAILED ◀───┴──other 3xx/4xx, a blocked address, or retries
                                                  used up (about a day)
    ```
    """

    class Kind(models.TextChoices):
        JOB = "job", "Job webhook"
        BUDGET_ALERT = "budget_alert", "Budget alert"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to send"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Given up"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    event = models.CharField(
        max_length=40
    )  # job.succeeded, job.failed, job.canceled, budget.threshold
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    notice = models.ForeignKey(
        BudgetNotice, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    hook = models.ForeignKey(
        AlertHook, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    url = models.URLField(max_length=2000)
    body = models.TextField()  # the JSON, exactly as sent
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # When the message for the next attempt is due to be taken from the queue; None when no
    # message is out (a long wait is left to the sweeper). The sweeper sends one only if due.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            # One delivery per job and event, however the job's end is reached.
            models.UniqueConstraint(
                fields=["job", "event"],
                name="webhookdelivery_job_event",
                condition=models.Q(job__isnull=False),
            ),
            # One delivery per budget notice and alert hook.
            models.UniqueConstraint(
                fields=["notice", "hook"],
                name="webhookdelivery_notice_hook",
                condition=models.Q(notice__isnull=False),
            ),
        ]
        indexes = [
            # The token page: a token's recent deliveries.
            models.Index(fields=["token", "-created_at"], name="webhookdelivery_token"),
            # The sweeper: deliveries due or stuck sending.
            models.Index(
                fields=["status", "next_attempt_at"],
                name="webhookdelivery_live",
                condition=models.Q(status__in=["pending", "sending"]),
            ),
        ]

    def __str__(self):
        return f"{self.event} to {self.url}"

    @property
    def message_id(self) -> str:
        """The `webhook-id` header: the same on every attempt, so receivers can drop repeats."""
        return f"msg_{self.pk.hex}"


class WebhookAttempt(models.Model):
    """One POST of a delivery: when, how long, and what came back (a status code or an error)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.status_code or self.error} at {self.started_at:%Y-%m-%d %H:%M:%S}"
