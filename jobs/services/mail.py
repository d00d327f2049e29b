"""Email through the outbox: queue a message for an event, and send it from a worker.

Nothing sends email inside a request. `email_queue` writes an OutgoingEmail row (in the
caller's transaction, once per event key) and asks a worker to send it when that transaction
commits; `email_send` runs in the worker, retries with backoff while the server is down or says
"try later", and gives up visibly (status "failed", shown to staff in the admin) after
EMAIL_MAX_ATTEMPTS. The sweeper (`emails_resend_due`) sends what a lost task or a dead worker
left unsent, so a message is never lost while Redis or a worker is away.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from jobs import mail
from jobs.models import OutgoingEmail

from .messages import BROKER_ERRORS, PUBLISH_RETRY_POLICY

logger = logging.getLogger(__name__)

# How long a worker holds a message while it talks to the SMTP server: EMAIL_TIMEOUT for each
# step of the conversation, with room to spare. A worker that dies holding it frees it then.
CLAIM_SECONDS = 120
# Waits before each retry, in seconds: 30 s, 1, 2, 5, 10, 30 min, 1, 2, 4, 8 h... about a day in
# all over EMAIL_MAX_ATTEMPTS tries (the last wait repeats).
BACKOFF = (30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800)
RESEND_BATCH = 200


def email_queue(
    *, key: str, to: str, subject: str, template: str, context: dict, user=None
) -> OutgoingEmail | None:
    """Queue one message about one event. Returns the new row, or None when the event already
    has one (or there is no address to send to).

    1. Render `email/<template>.txt` and `email/<template>.html` with `context` (plus the
       studio's address, STUDIO_URL, for links).
    2. Insert the row unless its `key` has one: a second report of the same event inserts
       nothing, and leaves the caller's transaction as it was.
    3. When the caller's transaction commits, ask a worker to send it. If Redis is away, the row
       waits for the sweeper.
    """
    if not to:
        return None
    context = {"studio_url": settings.STUDIO_URL.rstrip("/"), "subject": subject, **context}
    text = render_to_string(f"email/{template}.txt", context)
    html = render_to_string(f"email/{template}.html", context)
    email = OutgoingEmail(key=key[:200], to=to, user=user, subject=subject, text=text, html=html)
    if not _insert_unless_known(email):
        return None
    transaction.on_commit(lambda: _enqueue(email.pk))
    return email


def _insert_unless_known(email: OutgoingEmail) -> bool:
    """INSERT ... ON CONFLICT (key) DO NOTHING: whether the row went in. One statement, where
    a savepoint around a plain INSERT (to survive the duplicate's IntegrityError) took three;
    the "video ready" email is written inside every store's transaction, so each round trip
    there is one more for 3,000 stores landing in a minute (BENCHMARKS.md)."""
    meta = OutgoingEmail._meta
    connection = connections[router.db_for_write(OutgoingEmail)]
    quote = connection.ops.quote_name
    fields = meta.concrete_fields
    values = [f.get_db_prep_save(f.pre_save(email, True), connection) for f in fields]
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    key = quote(meta.get_field("key").column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
            f" ON CONFLICT ({key}) DO NOTHING",
            values,
        )
        inserted = cursor.rowcount == 1
    if inserted:  # as save() leaves a saved instance
        email._state.adding, email._state.db = False, connection.alias
    return inserted


def email_send(*, email_id) -> str:
    """Send one queued message. Returns what happened: "sent", "retry", "failed" or "skipped".

    1. Claim it: one conditional UPDATE moves `claimed_until` forward only if the row is still
       pending, due, and not held by another worker, so two workers never both send it.
    2. Hand it to the SMTP server (jobs.mail).
    3. Accepted: mark it sent. Refused for good, or out of attempts: mark it failed with the
       server's words. Otherwise: set the next attempt after the backoff and ask a worker to try
       then (the sweeper does too, if that message is lost).
    """
    now = timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    claimed = OutgoingEmail.objects.filter(
        due & free, pk=email_id, status=OutgoingEmail.Status.PENDING
    ).update(claimed_until=now + timedelta(seconds=CLAIM_SECONDS), attempts=F("attempts") + 1)
    if not claimed:
        return "skipped"
    email = OutgoingEmail.objects.get(pk=email_id)
    try:
        mail.deliver(
            to=email.to,
            subject=email.subject,
            text=email.text,
            html=email.html,
            message_id=email.message_id,
        )
    except mail.DeliveryError as exc:
        return _failed(email, str(exc), permanent=exc.permanent)
    OutgoingEmail.objects.filter(pk=email.pk, status=OutgoingEmail.Status.PENDING).update(
        status=OutgoingEmail.Status.SENT, sent_at=timezone.now(), claimed_until=None, last_error=""
    )
    logger.info("email sent: %s to %s (attempt %d)", email.key, email.to, email.attempts)
    return "sent"


def email_send_again(*, email: OutgoingEmail) -> bool:
    """Staff's "send again" for a message that was given up (or still waits): a fresh set of
    attempts. A message sent meanwhile is left as it is: the UPDATE names the states it may
    change. Returns whether it was queued again."""
    again = (
        OutgoingEmail.objects.filter(pk=email.pk)
        .exclude(status=OutgoingEmail.Status.SENT)
        .update(
            status=OutgoingEmail.Status.PENDING,
            attempts=0,
            next_attempt_at=None,
            claimed_until=None,
        )
    )
    if again:
        transaction.on_commit(lambda: _enqueue(email.pk))
    return bool(again)


def emails_resend_due() -> int:
    """The sweeper's step: ask a worker to send every pending message that is due and not held
    (its task was lost, Redis was away, or its worker died mid-send). Sending twice is harmless:
    the claim in email_send lets one through."""
    now = timezone.now()
    due = OutgoingEmail.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        status=OutgoingEmail.Status.PENDING,
        created_at__lt=now - timedelta(seconds=30),  # a fresh row's own task is on its way
    )
    sent = 0
    for pk in due.values_list("pk", flat=True)[:RESEND_BATCH]:
        sent += _enqueue(pk)
    return sent


def _failed(email: OutgoingEmail, error: str, *, permanent: bool) -> str:
    rows = OutgoingEmail.objects.filter(pk=email.pk, status=OutgoingEmail.Status.PENDING)
    if permanent or email.attempts >= settings.EMAIL_MAX_ATTEMPTS:
        rows.update(status=OutgoingEmail.Status.FAILED, last_error=error, claimed_until=None)
        logger.error("email given up after %d attempts: %s: %s", email.attempts, email.key, error)
        return "failed"
    wait = BACKOFF[min(email.attempts, len(BACKOFF)) - 1]
    rows.update(
        next_attempt_at=timezone.now() + timedelta(seconds=wait),
        last_error=error,
        claimed_until=None,
    )
    logger.warning("email not sent (attempt %d), again in %d s: %s", email.attempts, wait, error)
    _enqueue(email.pk, countdown=wait)
    return "retry"


def _enqueue(email_id, countdown: float | None = None) -> int:
    from jobs.tasks import send_email

    try:
        send_email.apply_async(
            (str(email_id),), countdown=countdown, retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except BROKER_ERRORS:
        logger.warning("email %s waits for the sweeper: the queue is unreachable", email_id)
        return 0
    return 1
