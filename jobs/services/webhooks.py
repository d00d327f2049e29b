"""Webhook deliveries: recorded with what they report, sent through the queue, retried for about
a day, each attempt logged, and never delivered twice by two workers.

Two kinds share this machinery (models.WebhookDelivery):
- a job's final state, to the webhook URL of the API request (or its token's default), signed
  with the token's secret per Standard Webhooks; the body is GET /v1/jobs/{id}'s answer;
- a budget notice, to each active staff alert hook, as Slack's `{"text": ...}`.

A receiver that is down never touches the job: the delivery row is written in the job's own
final transaction (nothing is sent there), and the POST happens later in a task of its own.
"""

import json
import logging
import time
import uuid
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from jobs import periods, webhooks
from jobs.models import AlertHook, Budget, BudgetNotice, Job, WebhookAttempt, WebhookDelivery
from jobs.templatetags.studio import usd

from .messages import BROKER_ERRORS, PUBLISH_RETRY_POLICY

logger = logging.getLogger(__name__)

# The wait before each retry: 5 s, 30 s, 2 min, 10 min, 1 h, 3 h, 6 h, 12 h. Nine attempts over
# about 22 hours; then the delivery is given up, visibly (the token page, the admin).
RETRY_DELAYS = (5, 30, 120, 600, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
# A wait up to this long rides on a message with a countdown. Longer ones are left to the
# sweeper, which sends the message once it is due: Redis gives an unacknowledged countdown
# message to another worker after its visibility timeout, so hours-long countdowns would repeat.
COUNTDOWN_MAX_SECONDS = 600
# The sweeper sends a due delivery's message again when none went out this long ago (Redis
# lost it, or it was never sent), and takes back a delivery stuck SENDING this long (its worker
# stopped mid-attempt; an attempt takes at most about 15 s).
RESEND_AFTER = timedelta(minutes=2)
SENDING_TIMEOUT = timedelta(minutes=5)
SWEEP_BATCH = 500
# Answers that say "try later" rather than "no": retried like a 5xx or a timeout.
RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})
# A hook added today gets today's notices, not a month of old ones.
ALERT_LOOKBACK = timedelta(days=1)
PERIOD_ADJECTIVES = {Budget.Period.DAY: "daily", Budget.Period.WEEK: "weekly",
                     Budget.Period.MONTH: "monthly"}  # fmt: skip


# --- Recording ----------------------------------------------------------------------------------


def job_webhook_record(*, job: Job) -> None:
    """Inside the transaction that moved `job` to SUCCEEDED, FAILED or CANCELED: its webhook
    delivery, if it has a webhook URL, sent once that transaction commits.

    1. Read the job as it now is, and render GET /v1/jobs/{id}'s answer for it (the video as
       the studio's URL, whatever its response_format: a webhook never carries the video).
    2. Insert the delivery; the unique constraint on job and event makes a second one for the
       same end a no-op, however it is reached.
    3. After commit, send its message (or leave it to the sweeper if Redis is away).
    """
    if not job.webhook_url:
        return
    from jobs.api import results  # the API's renderer; it imports services itself

    job = Job.objects.select_related("team").get(pk=job.pk)
    base = job.api_base_url.rstrip("/")
    body = results.job_body(job, absolute=lambda path: base + path)
    _record(
        [
            WebhookDelivery(
                kind=WebhookDelivery.Kind.JOB,
                event=f"job.{job.status}",
                job=job,
                token_id=job.token_id,
                url=job.webhook_url,
                body=json.dumps(body),
            )
        ]
    )


def budget_alerts_record() -> int:
    """A delivery of each recent budget notice to each active alert hook that existed when the
    notice was made, once (the unique constraint on notice and hook), sent after commit. Called
    after notices_record commits, and by the sweeper, in case that call was lost. Returns how
    many were new."""
    now = timezone.now()
    hooks = list(AlertHook.objects.filter(is_active=True))
    if not hooks:
        return 0
    notices = BudgetNotice.objects.filter(created_at__gte=now - ALERT_LOOKBACK).select_related(
        "budget", "team", "user", "budget__token"
    )
    done = set(
        WebhookDelivery.objects.filter(notice__in=notices).values_list("notice_id", "hook_id")
    )
    rows = [
        WebhookDelivery(
            kind=WebhookDelivery.Kind.BUDGET_ALERT,
            event="budget.threshold",
            notice=notice,
            hook=hook,
            url=hook.url,
            body=json.dumps({"text": budget_alert_text(notice)}),
        )
        for notice in notices
        for hook in hooks
        if hook.created_at <= notice.created_at and (notice.pk, hook.pk) not in done
    ]
    with transaction.atomic():
        _record(rows)
    return len(rows)


def budget_alert_text(notice: BudgetNotice) -> str:
    """One line a person understands: "Design team has used 80% of its $20.00 monthly budget
    ($16.40); resets in 3 days, on 1 Jan." Counted from when the notice was made."""
    level = notice.level
    budget = f"{usd(notice.limit)} {PERIOD_ADJECTIVES.get(notice.period, notice.period)} budget"
    if level == Budget.Level.ORGANIZATION:
        words = f"The organization has used {notice.threshold}% of its {budget}"
    elif level == Budget.Level.TEAM:
        words = f"{notice.team.label} has used {notice.threshold}% of its {budget}"
    elif level == Budget.Level.MEMBER:
        words = (f"{notice.user.get_username()} has used {notice.threshold}% of their {budget} "
                 f"in the {notice.team.label}")  # fmt: skip
    elif level == Budget.Level.PERSONAL:
        words = (
            f"{notice.user.get_username()} has used {notice.threshold}% of their personal {budget}"
        )
    else:
        token = notice.budget.token
        words = (f"API token “{token.name}” of {notice.user.get_username()} has used "
                 f"{notice.threshold}% of its {budget}")  # fmt: skip
    spent = usd(notice.spent.quantize(Decimal("0.01")))
    return f"{words} ({spent}); {periods.resets_words(notice.period, notice.created_at)}."


def _record(rows: list[WebhookDelivery]) -> None:
    if not rows:
        return
    now = timezone.now()
    for row in rows:
        row.id = uuid.uuid4()
        row.enqueued_at = now  # its message goes out on commit
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    ids = [row.id for row in rows]
    # A conflicting row was not inserted; its id names nothing, and its task returns at once.
    transaction.on_commit(lambda: [_message_send(delivery_id=pk, stamp=now) for pk in ids])


# --- Sending ------------------------------------------------------------------------------------


def delivery_send(*, delivery_id) -> None:
    """One attempt of a delivery.

    1. Claim it: PENDING and due → SENDING, attempts + 1, in one conditional UPDATE. Only the
       caller that changed the row posts, so two workers (or a duplicate message) never send
       one attempt twice.
    2. POST once, holding no transaction and no row lock: signed with the token's current secret
       for a job's webhook; to the address checked now (webhooks.post).
    3. Log the attempt, and leave SENDING in one conditional UPDATE naming this claim:
       DELIVERED on a 2xx; FAILED on an answer that retrying will not change (see _final), or
       once RETRY_DELAYS are used up; otherwise PENDING until the next wait is over, with a
       message for it (or, for a long wait, none: the sweeper sends it when due).
    """
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).update(status=WebhookDelivery.Status.SENDING, attempts=F("attempts") + 1, claimed_at=now)
    if not claimed:
        logger.info("webhook delivery %s: not due, gone or taken; skipped", delivery_id)
        return
    delivery = WebhookDelivery.objects.select_related("token").get(pk=delivery_id)
    body = delivery.body.encode()
    started = timezone.now()
    from .running import _release_connection  # running imports this module

    _release_connection()  # a receiver may take its 10 seconds
    outcome = webhooks.post(delivery.url, body, _headers(delivery, body))
    _finish(delivery, outcome, started)


def _headers(delivery: WebhookDelivery, body: bytes) -> dict[str, str]:
    if delivery.kind != WebhookDelivery.Kind.JOB:
        return {}  # a chat's incoming webhook: its secret URL is its only key
    timestamp = int(time.time())
    headers = {"webhook-id": delivery.message_id, "webhook-timestamp": str(timestamp)}
    secret = delivery.token.webhook_secret if delivery.token else ""
    if secret:
        headers["webhook-signature"] = webhooks.signature(
            secret, delivery.message_id, timestamp, body
        )
    return headers


def _finish(delivery: WebhookDelivery, outcome: webhooks.Outcome, started) -> None:
    mine = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=WebhookDelivery.Status.SENDING, claimed_at=delivery.claimed_at
    )
    error = outcome.error
    now = timezone.now()
    if outcome.ok:
        changes = {"status": WebhookDelivery.Status.DELIVERED, "delivered_at": now}
    elif _final(outcome):
        changes = {"status": WebhookDelivery.Status.FAILED}
        if not outcome.blocked:
            error = _final_words(outcome.status_code)
    elif delivery.attempts > len(RETRY_DELAYS):
        changes = {"status": WebhookDelivery.Status.FAILED}
        error = (
            f"{error or f'HTTP {outcome.status_code}.'} Gave up after {delivery.attempts} attempts."
        )
    else:
        wait = RETRY_DELAYS[delivery.attempts - 1]
        due = now + timedelta(seconds=wait)
        changes = {
            "status": WebhookDelivery.Status.PENDING,
            "next_attempt_at": due,
            "enqueued_at": due if wait <= COUNTDOWN_MAX_SECONDS else None,
        }
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            started_at=started,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            error=outcome.error[:500],
        )
        moved = mine.update(last_status_code=outcome.status_code, last_error=error[:500], **changes)
    logger.info(
        "webhook delivery %s: attempt %d: %s in %d ms",
        delivery.pk,
        delivery.attempts,
        outcome.status_code or outcome.error,
        outcome.duration_ms,
    )
    if moved and changes.get("enqueued_at"):
        _message_send(
            delivery_id=delivery.pk,
            stamp=changes["enqueued_at"],
            countdown=(changes["enqueued_at"] - timezone.now()).total_seconds(),
        )


def _final(outcome: webhooks.Outcome) -> bool:
    """An answer that retrying will not change: the address is not allowed, a redirect (never
    followed, so it would come back the same), or a 4xx other than "try later" (the receiver
    read the message and refuses it: a wrong path, a failed signature check). The owner sees it
    on the token page and presses Send again once it is fixed, rather than the receiver being
    knocked on for a day."""
    if outcome.blocked:
        return True
    code = outcome.status_code
    return code is not None and code < 500 and code not in RETRYABLE_CLIENT_ERRORS


def _final_words(code: int) -> str:
    if 300 <= code < 400:
        return f"HTTP {code}: the receiver redirects, and webhooks do not follow redirects."
    return f"HTTP {code}: the receiver refused it, so it was not retried."


def _message_send(*, delivery_id, stamp, countdown: float | None = None) -> bool:
    """Send the delivery's task. If Redis is away, clear `enqueued_at` (if still `stamp`), so
    the sweeper sends it once Redis is back."""
    from jobs.tasks import deliver_webhook

    options = {"retry": True, "retry_policy": PUBLISH_RETRY_POLICY}
    if countdown is not None:
        options["countdown"] = max(0.0, countdown)
    try:
        deliver_webhook.apply_async(args=(str(delivery_id),), **options)
    except BROKER_ERRORS as exc:
        WebhookDelivery.objects.filter(pk=delivery_id, enqueued_at=stamp).update(enqueued_at=None)
        logger.warning("webhook delivery %s: queue unreachable (%s)", delivery_id, exc)
        return False
    return True


# --- People and the sweeper ---------------------------------------------------------------------


def delivery_resend(*, delivery: WebhookDelivery) -> bool:
    """Send again (the owner or staff asked): DELIVERED or FAILED → PENDING, due now, with a
    fresh round of retries. Same id and body, so a receiver that keeps ids can tell it is a
    repeat. False when it is still on its way."""
    now = timezone.now()
    with transaction.atomic():
        again = WebhookDelivery.objects.filter(
            pk=delivery.pk,
            status__in=[WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.FAILED],
        ).update(
            status=WebhookDelivery.Status.PENDING,
            attempts=0,
            next_attempt_at=now,
            enqueued_at=now,
            delivered_at=None,
        )
        if again:
            transaction.on_commit(lambda: _message_send(delivery_id=delivery.pk, stamp=now))
    return bool(again)


def deliveries_sweep() -> dict[str, int]:
    """The sweeper's part (services.sweep). Safe twice at once: every change is conditional.

    1. SENDING past SENDING_TIMEOUT: its worker stopped mid-attempt. Back to PENDING, due now
       (it counts as an attempt; whether the receiver got it is unknown, and the same
       webhook-id lets it drop a repeat).
    2. PENDING and due, whose message went out more than RESEND_AFTER ago or never: stamp
       `enqueued_at` only if unchanged, and send a message only then.
    3. Budget notices that no on_commit call turned into deliveries (budget_alerts_record).
    """
    now = timezone.now()
    stuck = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.SENDING, claimed_at__lt=now - SENDING_TIMEOUT
    ).update(
        status=WebhookDelivery.Status.PENDING,
        next_attempt_at=now,
        enqueued_at=None,
        last_error="The worker stopped during this attempt.",
    )
    due = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - RESEND_AFTER))
    sent = 0
    for pk, stamp in due.values_list("pk", "enqueued_at")[:SWEEP_BATCH]:
        mine = due.filter(pk=pk)
        mine = (
            mine.filter(enqueued_at__isnull=True)
            if stamp is None
            else mine.filter(enqueued_at=stamp)
        )
        if mine.update(enqueued_at=now) and _message_send(delivery_id=pk, stamp=now):
            sent += 1
    return {
        "webhooks_unstuck": stuck,
        "webhooks_sent": sent,
        "alerts_recorded": budget_alerts_record(),
    }
