"""What the fair queue costs, and what it buys (issue 24; services/queue.py).

    .venv/bin/python bench/fairqueue.py            # ~2 min: the claim at 10,000 queued, then a run
    .venv/bin/python bench/fairqueue.py --tiny     # a check in seconds (tests/test_benches.py)

1. The claim, in PostgreSQL: its own database, `videostudio_fairqueue`, migrated and emptied,
   seeded with `--people` (1,000) people and `--queued` (10,000) jobs queued as job_create
   would have given them rounds (each person's next job one round later), over `--history`
   (50,000) finished jobs. Times `--samples` (200) of each: the fair claim
   (queue.job_claim_next: on PostgreSQL one UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP
   LOCKED) RETURNING *, committed), the old first-in-first-out claim of a named job (one conditional UPDATE by
   primary key) for comparison, and a submit's round (queue.queue_round_next). Prints the
   plan of the claim's SELECT (its subquery).
2. A run with real workers: the bundled simulator (`--latency` s per call) and one generate
   worker (threads, `--concurrency`) on Redis database 10. One person submits a batch of
   `--batch` (100) jobs, `--others` (20) people one job each behind it; once every slot is busy,
   one more person submits a single job. Prints how long, and after how many other starts,
   that single job started (the others still waiting in the round being served go first; no
   more of the batch's should); the others' waits; and how long the batch took from the first
   start against the least it could (every job, in waves of `--concurrency`, each `--latency`).

Jobs are `ir/test-video`, `b64_json`, so the generate worker stores them itself and no other
worker is needed. The per-person limits are off (JOB_ACTIVE_LIMIT=0, JOB_SUBMITS_PER_MINUTE=0):
a batch of 100 is the case. Everything it starts is stopped at the end, by process id.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time

import common

DATABASE = "videostudio_fairqueue"
REDIS_URL = "redis://127.0.0.1:6379/10"
TINY = {"people": 20, "queued": 200, "history": 500, "samples": 20, "batch": 10, "others": 3,
        "concurrency": 2, "latency": 0.3, "database": "videostudio_fairqueue_tiny",
        "redis_url": "redis://127.0.0.1:6379/11"}  # fmt: skip
PASSWORD = "fairqueue-bench"  # noqa: S105 - bench accounts in a bench database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=50_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--others", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--database", default=DATABASE, help="the bench's own database")
    parser.add_argument("--redis-url", default=REDIS_URL, help="a Redis database it may empty")
    common.add_tiny_option(parser, "200 jobs queued by 20 people, a batch of 10 on 2 slots")
    args = common.parse_args(parser, TINY)
    common.check_database_name(args.database)
    common.ensure_database(args.database, statement_timeout="60s")
    env = {
        "DATABASE_URL": f"{common.SERVER_URL}/{args.database}",
        "REDIS_URL": args.redis_url,
        "JOB_ACTIVE_LIMIT": "0",
        "JOB_SUBMITS_PER_MINUTE": "0",
        "LOG_LEVEL": "WARNING",
    }
    common.django_setup(env)
    common.migrate()
    common.flush_redis(args.redis_url)
    print(f"machine: {common.cpu_model()}, load {common.loadavg()}, {time.strftime('%Y-%m-%d')}")
    ok = measure_claims(args)
    ok = run_with_workers(args, env) and ok
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    sys.exit(0 if ok else 1)


# --- 1. The claim at scale ----------------------------------------------------------------------


def empty() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE jobs_costentry, jobs_job, auth_user CASCADE")


def seed(args) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from jobs.models import Job

    user = get_user_model()
    per_person = max(1, args.queued // args.people)
    with transaction.atomic(), connection.cursor() as cursor:
        common.insert_select(
            cursor, user,
            {"username": "'fair-' || n", "password": "''", "date_joined": "now()",
             "is_active": "true"},
            "FROM generate_series(1, %(people)s) AS n", {"people": args.people},
        )  # fmt: skip
        first_user = user.objects.filter(username__startswith="fair-").order_by("pk").first().pk
        # History: finished jobs with rounds 0 .. history / people, as served before.
        common.insert_select(
            cursor, Job,
            {"id": "gen_random_uuid()", "owner_id": "%(first)s + n %% %(people)s",
             "model": "'ir/test-video'", "status": "'succeeded'", "attempt": "1",
             "queue_round": "n / %(people)s", "created_at": "now() - interval '1 day'",
             "started_at": "now() - interval '1 day'", "finished_at": "now() - interval '1 day'"},
            "FROM generate_series(0, %(history)s - 1) AS n",
            {"first": first_user, "people": args.people, "history": args.history},
        )  # fmt: skip
        served = args.history // args.people
        # Queued: each person's jobs in consecutive rounds from the round being served, each
        # submitted a moment after the one before, as job_create gives them.
        common.insert_select(
            cursor, Job,
            {"id": "gen_random_uuid()", "owner_id": "%(first)s + n %% %(people)s",
             "model": "'ir/test-video'", "status": "'queued'",
             "queue_round": "%(served)s + n / %(people)s",
             "created_at": "now() - interval '1 hour' + n * interval '1 millisecond'",
             "enqueued_at": "now()"},
            "FROM generate_series(0, %(queued)s - 1) AS n",
            {"first": first_user, "people": args.people, "queued": per_person * args.people,
             "served": served},
        )  # fmt: skip
        cursor.execute("ANALYZE jobs_job")


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def measure_claims(args) -> bool:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import F
    from django.utils import timezone

    from jobs.models import Job
    from jobs.services import queue

    empty()
    started = time.monotonic()
    seed(args)
    queued = Job.objects.filter(status=Job.Status.QUEUED).count()
    print(f"seeded {args.people:,} people, {queued:,} jobs queued over {args.history:,} "
          f"finished, in {time.monotonic() - started:.1f} s")  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT id FROM jobs_job "
            "WHERE status = 'queued' AND (not_before IS NULL OR not_before <= now()) "
            "ORDER BY queue_round, created_at LIMIT 1 FOR UPDATE SKIP LOCKED"
        )
        plan = [row[0] for row in cursor.fetchall()]
    print("the claim's plan:\n  " + "\n  ".join(plan))

    owners = list(get_user_model().objects.filter(username__startswith="fair-").only("pk"))
    fair, order = [], []
    for _ in range(args.samples):
        job = None

        def claim():
            nonlocal job
            job = queue.job_claim_next()

        fair.append(timed(claim))
        order.append(job.owner_id)
    # The first-in-first-out claim of a named job, as before: one conditional UPDATE by pk.
    named = list(
        Job.objects.filter(status=Job.Status.QUEUED)
        .order_by("-queue_round")
        .values_list("pk", flat=True)[: args.samples]
    )
    fifo = [
        timed(
            lambda pk=pk: Job.objects.filter(pk=pk, status=Job.Status.QUEUED).update(
                status=Job.Status.RUNNING, attempt=F("attempt") + 1, started_at=timezone.now()
            )
        )
        for pk in named
    ]
    rounds = [timed(lambda o=o: queue.queue_round_next(owner=o)) for o in owners[: args.samples]]
    rows = [
        [name, f"{statistics.median(values):.2f}", f"{common.percentile(values, 0.95):.2f}",
         f"{max(values):.2f}"]
        for name, values in (
            ("fair claim (job_claim_next)", fair),
            ("named claim, as before (UPDATE by pk)", fifo),
            ("a submit's round (queue_round_next)", rounds),
        )
    ]  # fmt: skip
    title = f"=== {args.samples} of each, {queued:,} queued by {args.people:,} people"
    common.print_table(title, ["operation", "median ms", "p95 ms", "max ms"], rows, load=True)
    distinct = len(set(order))
    turns = distinct == min(args.samples, args.people)
    print(f"the {args.samples} fair claims went to {distinct} different people: "
          f"{'one turn each' if turns else 'NOT one turn each'}")  # fmt: skip
    return turns


# --- 2. A run with real workers -----------------------------------------------------------------


def run_with_workers(args, env) -> bool:
    import os

    from django.contrib.auth import get_user_model

    from jobs import services
    from jobs.models import Job
    from jobs.services import catalog_sync

    empty()
    common.flush_redis(args.redis_url)
    sim = common.start_simulator(
        {"SIM_LATENCY": f"{args.latency:g}", "SIM_KEEPALIVE_INTERVAL": "1"}
    )
    worker = None
    try:
        from django.conf import settings

        settings.IMAGEROUTER_BASE_URL = sim.url
        catalog_sync()
        users = get_user_model().objects
        batcher = users.create_user("fair-batch", password=PASSWORD)
        others = [
            users.create_user(f"fair-other-{n}", password=PASSWORD) for n in range(args.others)
        ]
        single = users.create_user("fair-single", password=PASSWORD)

        def submit(owner, prompt):
            return services.job_create(owner=owner, prompt=prompt, model="ir/test-video",
                                       size="auto", seconds="auto", response_format="b64_json")  # fmt: skip

        batch = [submit(batcher, f"batch {n}") for n in range(args.batch)]
        theirs = [submit(person, "one of the others") for person in others]
        worker_env = {**os.environ, **env, "IMAGEROUTER_BASE_URL": sim.url}
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "videostudio", "--quiet", "worker",
             "-Q", "generate", "--pool", "threads", "-c", str(args.concurrency),
             "-n", f"fairqueue-{os.getpid()}@%h"],
            cwd=common.REPO_ROOT, env=worker_env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while Job.objects.filter(status=Job.Status.RUNNING).count() < args.concurrency:
            if time.monotonic() > deadline:
                print("the worker never filled its slots")
                return False
            time.sleep(0.05)
        started_before = Job.objects.filter(started_at__isnull=False).count()
        lonely = submit(single, "a single job behind the batch")
        everything = [*batch, *theirs, lonely]
        while (
            Job.objects.filter(pk__in=[j.pk for j in everything])
            .exclude(status__in=Job.TERMINAL)
            .exists()
        ):
            if time.monotonic() > deadline + 600:
                print("the jobs did not finish")
                return False
            time.sleep(0.2)
    finally:
        if worker is not None:
            common.stop_process(worker, timeout=30)
        sim.stop()

    jobs = {job.pk: job for job in Job.objects.filter(pk__in=[j.pk for j in everything])}
    lonely = jobs[lonely.pk]
    starts_ahead = Job.objects.filter(started_at__lt=lonely.started_at).count() - started_before
    # Of the batch's: none should start between the single job's submit and its start (one may,
    # claimed in the instant the single job was being saved).
    batch_ahead = Job.objects.filter(
        pk__in=[j.pk for j in batch],
        started_at__gt=lonely.created_at,
        started_at__lt=lonely.started_at,
    ).count()
    waits = [(jobs[j.pk].started_at - jobs[j.pk].created_at).total_seconds() for j in theirs]
    batch_jobs = [jobs[j.pk] for j in batch]
    first_start = min(job.started_at for job in jobs.values())
    batch_span = (max(job.finished_at for job in batch_jobs) - first_start).total_seconds()
    total = len(everything)
    least = math.ceil(total / args.concurrency) * args.latency
    succeeded = sum(job.status == Job.Status.SUCCEEDED for job in jobs.values())
    once = all(job.attempt == 1 for job in jobs.values())
    common.print_table(
        f"=== {args.batch}-job batch, {args.others} others one job each, then one single job; "
        f"{args.concurrency} slots, {args.latency:g} s a call",
        ["figure", "value"],
        [
            ["single job: submit to start", f"{(lonely.started_at - lonely.created_at).total_seconds():.2f} s"],
            ["single job: jobs started first (the others' in its round)", f"{starts_ahead}"],
            ["single job: batch jobs started first", f"{batch_ahead}"],
            ["the others: submit to start, median / max", f"{statistics.median(waits):.2f} / {max(waits):.2f} s"],
            ["the batch: first start (any job) to its last finish", f"{batch_span:.1f} s"],
            ["least possible for all the jobs", f"{least:.1f} s ({total} jobs in waves of {args.concurrency})"],
            ["jobs succeeded, each claimed once", f"{succeeded} / {total}, {'yes' if once else 'NO'}"],
        ],
        load=True,
    )  # fmt: skip
    return succeeded == total and once and batch_ahead <= 1


if __name__ == "__main__":
    main()
