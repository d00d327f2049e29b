"""The sweeper: rescues jobs whose worker or message was lost, and deletes the files of expired
videos. Runs every minute from beat."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from jobs import imagerouter, metrics
from jobs.models import Job

from .alerts import budget_notices_email
from .files import file_deletions_retry
from .idempotency import submit_keys_expire
from .mail import emails_resend_due
from .messages import job_message_send, run_message_send
from .retention import jobs_expire
from .running import fail_unknown
from .webhooks import deliveries_sweep

logger = logging.getLogger(__name__)

# Re-send at most this many messages per sweep, so a backlog drains without a burst.
RESEND_BATCH = 500
# A succeeded job still without a poster this long after it finished has lost its poster task
# (its worker stopped, or Redis lost the message): ask once more. Only jobs created in the
# last POSTER_LOOKBACK are looked at, so each sweep reads a day of jobs, not the whole table.
POSTER_RETRY_AFTER = timedelta(minutes=10)
POSTER_LOOKBACK = timedelta(days=1)


def sweep() -> dict[str, int]:
    """One pass. Safe to run twice at once: every change is conditional, so each row moves once.

    1. RUNNING past JOB_RUNNING_DEADLINE: its worker is gone. FAILED, outcome unknown, with the
       model's top price as possible cost: one conditional UPDATE per job, so when two sweepers
       reach the same job only one changes it (and writes its ledger entry).
    2. QUEUED whose message is older than JOB_REQUEUE_AFTER (and not waiting to retry): Redis may
       have lost it. Stamp `enqueued_at` only if it is unchanged, and send a message only then:
       a generate message, which lets a slot run the fairest queued job (services/queue.py), so
       every job still queued has at least one message to run it.
    3. STORING untouched past JOB_STORING_DEADLINE: its store task is gone. The same, sending a
       store message (which never calls the API).
    4. SUCCEEDED without a poster POSTER_RETRY_AFTER after it finished: one more poster task,
       once per job (a video ffmpeg cannot decode is not tried every minute).
    5. Submit keys (idempotency.py) past their lifetime are deleted.
    6. Emails that are due and unsent, and not held by a worker, are queued again (mail.py).
    7. Webhook deliveries whose message or worker was lost are sent again, when due
       (webhooks.deliveries_sweep).
    8. Budget notices whose emails were never queued (the hook after their commit was lost)
       are emailed now (alerts.budget_notices_email).
    9. Retention: the files of finished jobs past their retention are deleted, in a bounded
       batch (retention.jobs_expire); each job is locked while it expires, so two sweepers
       delete its files once.
    10. Stored files whose deletion a crash or a storage error left behind are deleted
        (files.file_deletions_retry).
    """
    from jobs.tasks import store_job

    now = timezone.now()
    overdue = Job.objects.filter(
        status=Job.Status.RUNNING,
        started_at__lt=now - timedelta(seconds=settings.JOB_RUNNING_DEADLINE),
    )
    message = imagerouter.UNKNOWN_MESSAGE + " (its worker stopped during the call)"
    lost = 0
    for job in overdue[:RESEND_BATCH]:
        if fail_unknown(job, overdue.filter(pk=job.pk), message):
            # Its worker died before it could count the call: counted here, once.
            metrics.provider_call_record(model=job.model, outcome=metrics.OUTCOME_UNKNOWN)
            lost += 1
    queued = Job.objects.filter(status=Job.Status.QUEUED).filter(
        Q(not_before__isnull=True) | Q(not_before__lte=now)
    )
    # None: a generate message, which names no job (messages.run_message_send).
    requeued = _resend(queued, now - timedelta(seconds=settings.JOB_REQUEUE_AFTER), None, now)
    storing = Job.objects.filter(status=Job.Status.STORING)
    restored = _resend(
        storing, now - timedelta(seconds=settings.JOB_STORING_DEADLINE), store_job, now
    )
    counts = {
        "failed_lost": lost,
        "requeued": requeued,
        "store_retried": restored,
        "posters_retried": _resend_posters(now),
    }
    if any(counts.values()):  # each is a rescue: something was lost
        logger.warning("sweeper: %s", counts)
    return {
        **counts,
        "emails_resent": emails_resend_due(),
        "notice_emails_queued": budget_notices_email(),
        "submit_keys_expired": submit_keys_expire(),
        **deliveries_sweep(),
        "jobs_expired": jobs_expire(),
        "files_deleted": file_deletions_retry(),
    }


def _resend(jobs, cutoff, task, now) -> int:
    overdue = jobs.filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=cutoff))
    return _send_once(overdue, task, now)


def _send_once(jobs, task, now) -> int:
    """Send `task` for each of `jobs` (at most RESEND_BATCH) whose `enqueued_at` this sweeper
    stamps first: the stamp is a conditional UPDATE naming the row's status and the stamp it
    was read with, so two sweepers at once send each message once. A message Redis does not
    take leaves the stamp cleared, for the next pass (messages.job_message_send). `task` None:
    a generate message, which names no job (messages.run_message_send)."""
    sent = 0
    for pk, stamp, status in jobs.values_list("pk", "enqueued_at", "status")[:RESEND_BATCH]:
        mine = jobs.filter(pk=pk, status=status)
        mine = (
            mine.filter(enqueued_at__isnull=True)
            if stamp is None
            else mine.filter(enqueued_at=stamp)
        )
        if mine.update(enqueued_at=now) and _send(task, pk, now):
            sent += 1
    return sent


def _send(task, job_id, stamp) -> bool:
    if task is None:
        return run_message_send(job_id=job_id, stamp=stamp)
    return job_message_send(task=task, job_id=job_id, stamp=stamp)


def _resend_posters(now) -> int:
    """Step 4. `enqueued_at` says when a job's last message was sent; for a succeeded job it is
    from before it finished, until its poster is asked for again here. Stamping it (only if it
    is unchanged) both claims the job for this sweeper and marks it as asked once."""
    from jobs.tasks import make_poster

    posterless = (
        Job.objects.filter(
            status=Job.Status.SUCCEEDED,
            created_at__gte=now - POSTER_LOOKBACK,
            finished_at__lt=now - POSTER_RETRY_AFTER,
            poster="",
            deleted_at__isnull=True,
        )
        .exclude(video="")
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=F("finished_at")))
    )
    return _send_once(posterless, make_poster, now)
