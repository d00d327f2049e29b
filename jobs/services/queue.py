"""The fair queue: which queued job a free generate slot runs next.

A message on the `generate` queue names no job. It means "a slot may run the fairest queued
job", and the worker that takes it chooses that job when it claims, here. Every submit (and every
retry after a wait) still sends one message, so there are at least as many messages as jobs to
run; a message that finds nothing claimable does nothing, and a lost one is replaced by the
sweeper as before. The database decides the order, so every worker host shares one queue.

The order is a round robin across people, by starts (start-time fair queuing with a unit cost
per job):

- each job gets a round when it is submitted (`queue_round_next`): one more than its owner's
  latest round, and never earlier than the round being served (the latest round a worker has
  claimed). So a person's batch of 100 takes 100 consecutive rounds, and someone who submits one
  job behind it joins the round being served, ahead of the batch's remaining rounds;
- a worker claims the queued job of the earliest round, the oldest first within a round
  (`job_claim_next`): each person with queued jobs starts one per round, in turn.

The queue is fair across people, not teams: the slots are the studio's, the wait is felt by
people, and a team of ten busy people is ten people waiting (README, "How the queue shares the
workers").
"""

import functools
import logging

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from jobs.models import Job

logger = logging.getLogger(__name__)

# A claim that loses its row to another worker (possible only where FOR UPDATE SKIP LOCKED is
# not, SQLite) looks again, this many times in all.
CLAIM_TRIES = 5


def queue_round_next(*, owner, count: int = 1) -> list[int]:
    """The rounds of `count` jobs `owner` is about to submit, in their order.

    1. The round being served: the latest round claimed (index job_round_started).
    2. The owner's latest round, of their jobs queued or started (index job_owner_round): jobs
       canceled before they ran had no turn and do not count against them.
    3. The first new job takes the later of (2) + 1 and (1); the others follow it.

    (1) and (2) are read in one statement (_rounds_sql): every submit runs it, and the ORM took
    1.1 ms of CPU to build and run the two aggregates where the statement takes 0.14.

    Call it in the transaction that saves the jobs, after the owner's row is locked
    (services.limits.owner_lock), so two submits of one person do not take one round.
    """
    with connection.cursor() as cursor:
        cursor.execute(_rounds_sql(), [owner.pk, Job.Status.QUEUED])
        served, mine = cursor.fetchone()
    first = max(served or 0, -1 if mine is None else mine + 1)
    return [first + n for n in range(count)]


def _table() -> str:
    return connection.ops.quote_name(Job._meta.db_table)


def _column(name: str) -> str:
    return connection.ops.quote_name(Job._meta.get_field(name).column)


@functools.cache
def _rounds_sql() -> str:
    """queue_round_next's statement, with the table's and columns' names from the model's _meta
    (the owner and the status are its parameters)."""
    table, round_, started = _table(), _column("queue_round"), _column("started_at")
    return (
        f"SELECT (SELECT MAX({round_}) FROM {table} WHERE {started} IS NOT NULL),"  # noqa: S608
        f" (SELECT MAX({round_}) FROM {table} WHERE {_column('owner')} = %s"
        f" AND ({_column('status')} = %s OR {started} IS NOT NULL))"
    )


def job_claim_next(*, now=None) -> Job | None:
    """Claim the fairest queued job for this slot: QUEUED → RUNNING. None if none can run now.

    1. Find the queued job of the earliest round (the oldest within it) that is not waiting to
       retry (`not_before`), locking it FOR UPDATE SKIP LOCKED: workers claiming at the same
       moment each take a different job instead of queuing on one row.
    2. Claim it with the usual conditional UPDATE naming QUEUED; only a claim that changed the
       row returns it, so a job is paid for at most once per attempt, and a cancel that comes
       first wins. On PostgreSQL, (1) and (2) are one statement (UPDATE ... WHERE id =
       (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING *), committed on its own: one round trip
       instead of five (BEGIN, SELECT, UPDATE, COMMIT, the row), which were most of a claim's
       time (bench/fairqueue.py).
    3. Where the database cannot skip locked rows (SQLite), a claim that lost the row to another
       worker looks again.
    """
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        return _job_claim_next_in_one_statement(now)
    claimable = (
        Job.objects.filter(status=Job.Status.QUEUED)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .order_by("queue_round", "created_at")
    )
    for _ in range(CLAIM_TRIES):
        with transaction.atomic():
            job_id = (
                claimable.select_for_update(skip_locked=True).values_list("pk", flat=True).first()
            )
            if job_id is None:
                return None
            claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
                status=Job.Status.RUNNING, attempt=F("attempt") + 1, started_at=now, error=""
            )
        if claimed:
            return Job.objects.get(pk=job_id)
    logger.info("no job claimed after %d tries: other workers took them", CLAIM_TRIES)
    return None


@functools.cache
def _claim_sql() -> str:
    """job_claim_next's statement, with the table's and columns' names from the model's _meta
    (the values are its parameters). The subquery's plan is the job_queue_turn index's."""
    table, pk, status = _table(), _column("id"), _column("status")
    attempt = _column("attempt")
    return (
        f"UPDATE {table} SET {status} = %s, {attempt} = {attempt} + 1,"  # noqa: S608
        f" {_column('started_at')} = %s, {_column('error')} = ''"
        f" WHERE {pk} = (SELECT {pk} FROM {table} WHERE {status} = %s"
        f" AND ({_column('not_before')} IS NULL OR {_column('not_before')} <= %s)"
        f" ORDER BY {_column('queue_round')}, {_column('created_at')}"
        " LIMIT 1 FOR UPDATE SKIP LOCKED)"
        f" AND {status} = %s RETURNING *"
    )


def _job_claim_next_in_one_statement(now) -> Job | None:
    queued, running = Job.Status.QUEUED, Job.Status.RUNNING
    params = [running, now, queued, now, queued]
    # In autocommit, so the statement commits on its own (inside a caller's atomic(), with it).
    claimed = list(Job.objects.raw(_claim_sql(), params))
    return claimed[0] if claimed else None
