"""Sending messages to the queue, and what happens when Redis is away.

A store or poster message names its job. A generate message names none: it means "a slot may
run the fairest queued job" (services/queue.py), and is sent once for each job submitted, or
waiting to retry, so there are always at least as many as jobs to run (`run_message_send`).

The database is the source of truth; Redis only carries the message, and the sweeper re-sends
whatever a lost message left behind. So a message that cannot be sent (Redis stopped, restarting
or unreachable) is not the submitter's problem: the job stays saved, and its `enqueued_at` is
cleared so that the sweeper's first pass once Redis is back sends it, rather than
JOB_REQUEUE_AFTER later. A submit is therefore never answered 500 after its job exists: the
person sees the job, queued, and a client that retries on a 500 never pays twice.
"""

import logging

from django.db import transaction
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from jobs.models import Job

logger = logging.getLogger(__name__)

# What a publish raises when the broker is down: kombu wraps redis-py's errors in
# OperationalError; a socket error can still come through bare.
BROKER_ERRORS = (OperationalError, RedisError, OSError)
# One quick retry, then give up: the sweeper sends it later. Celery's default (3 retries, up to
# 1 s) would hold the person's request for nothing while Redis is down.
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}


def job_message_send(*, task, job_id, stamp, countdown: float | None = None) -> bool:
    """Send `task` for the job. False, and the job left for the sweeper, when Redis is away.

    1. Publish, with at most one quick retry.
    2. If the broker cannot be reached, clear the job's `enqueued_at`, but only if it is still
       `stamp` (the value written with this send): a later send, by the sweeper or a worker,
       has then not happened yet, and the sweeper's next pass sends the message.
    """
    return _send(task=task, args=(str(job_id),), job_id=job_id, stamp=stamp, countdown=countdown)


def run_message_send(*, job_id, stamp, countdown: float | None = None) -> bool:
    """Send a generate message on behalf of the job `job_id` (just submitted, or waiting to
    retry for `countdown` seconds): a slot may then run the fairest queued job. False, and the
    job left for the sweeper, when Redis is away, as job_message_send.

    The message carries no argument: the job a slot runs is chosen when it claims.
    """
    from jobs.tasks import run_job

    return _send(task=run_job, args=(), job_id=job_id, stamp=stamp, countdown=countdown)


def run_message_send_on_commit(*, job_id, stamp) -> None:
    """run_message_send once the current transaction commits, so the worker sees the row."""
    transaction.on_commit(lambda: run_message_send(job_id=job_id, stamp=stamp))


def _send(*, task, args, job_id, stamp, countdown) -> bool:
    options = {"retry": True, "retry_policy": PUBLISH_RETRY_POLICY}
    if countdown is not None:
        options["countdown"] = countdown
    try:
        task.apply_async(args=args, **options)
    except BROKER_ERRORS as exc:
        Job.objects.filter(pk=job_id, enqueued_at=stamp).update(enqueued_at=None)
        logger.warning(
            "job %s: the queue is unreachable (%s); the sweeper will send it once it is back",
            job_id,
            type(exc).__name__,
        )
        return False
    return True
