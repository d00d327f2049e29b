"""How long does a submit's budget check take with every level in play, 50 submits racing, and
under a steady 100 submits a second? (issue 21: p95 of services.job_create ≤ 50 ms under 50
racing submits; issue 25: a submit's p95 ≤ 100 ms while 100 a second arrive.)

    .venv/bin/python bench/budgets.py            # 100,000 entries, 1,000 users, 50 teams
    .venv/bin/python bench/budgets.py --tiny     # a check in seconds (tests/test_benches.py)

1. Makes a PostgreSQL database of its own (`videostudio_budgets`; `_tiny` for --tiny), migrates
   it and seeds it afresh through the migrated schema (common.insert_select): 1,000 users in 50
   teams, a team API token each, budgets at every level (the organization; each team; each
   member in their team; each person; each token), 100,000 ledger entries this month (80% charged
   to teams, half of those through tokens) with their daily roll-up (SpendDay) summed from them,
   and 3,000 live jobs holding their models' top prices.
2. Starts a redis-server of its own on a free port (the shared server's 16 databases all have
   owners), for the messages job_create sends after commit.
3. Times services.job_create in-process, as the form's and the API's views call it, for the
   members of one team submitting through their team tokens (organization, team, member,
   personal and token rows all locked; four of them checked): first one at a time, then
   `--rounds` rounds of `--racers` threads released together, each thread with its own
   connection. The check alone (services.budgets.budget_reserve, as job_create calls it, lock
   waits included) is timed by wrapping it. Prints p50, p95 and max of each, and the SQL.
4. Then `--rate` submits a second for `--duration` seconds, arriving on a fixed schedule
   whether or not the earlier ones are done (an open loop, as people's presses are), taken by
   `--threads` threads (as many web processes, each with its connection), from every seeded
   person at random across all the teams: two in five through the API's real view
   (POST /v1/openai/videos/generations?async=true with the person's team token, through every
   middleware, in-process with Django's test client), two in five through services.job_create
   with the team token, one in five charged to the person's personal space. One person in ten has
   a member budget that is already spent, so their team submits are refused. Prints each path's
   server time (p50, p95, max), how late submits started behind their schedule, and the
   accepted and refused counts.
5. Checks that no level is over its limit, that the roll-up still equals the ledger and that
   every accepted submit saved its job; exits non-zero otherwise.
"""

import argparse
import json
import logging
import os
import queue
import random
import re
import subprocess
import tempfile
import threading
import time
from decimal import Decimal

import common

TINY = {"entries": 2_000, "users": 100, "teams": 5, "live": 60, "rounds": 1, "racers": 20,
        "rate": 20, "duration": 2, "threads": 8, "processes": 2,
        "database": "videostudio_budgets_tiny"}  # fmt: skip
MODELS = [  # id, top price, share of the seeded jobs
    ("kling/kling-2.1-standard", "0.50", 5),
    ("google/veo-3.1-fast", "0.60", 3),
    ("openai/sora-2", "1.20", 1),
    ("ir/test-video", "0", 1),
]
SUBMIT_MODEL = "kling/kling-2.1-standard"
WARM_UP = 2  # rounds of the three paths each arrival thread submits before the schedule


# --- A redis-server of the bench's own ----------------------------------------------------------


def start_redis(directory: str) -> tuple[subprocess.Popen, str]:
    import redis

    port = common.free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", directory],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=0.2).ping()
            return process, url
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                common.stop_process(process)
                raise
            time.sleep(0.05)


# --- Seeding ------------------------------------------------------------------------------------


def seed(*, users: int, teams: int, entries: int, live: int) -> float:
    from django.contrib.auth.models import User
    from django.db import connection, transaction
    from django.utils import timezone

    from jobs.models import (
        ApiToken,
        AuditEvent,
        Budget,
        BudgetNotice,
        CostEntry,
        Job,
        Membership,
        SpendDay,
        Team,
        VideoModel,
    )

    started = time.perf_counter()
    now = timezone.now()
    tables = [m._meta.db_table for m in (CostEntry, SpendDay, BudgetNotice, Job, Budget,
              ApiToken, Membership, Team, AuditEvent, VideoModel, User)]  # fmt: skip
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
        VideoModel.objects.bulk_create(
            VideoModel(id=m, name=m, pricing="fixed", price_min=Decimal(top),
                       price_average=Decimal(top), price_max=Decimal(top), seconds=[5],
                       default_seconds=5, synced_at=now)
            for m, top, _share in MODELS
        )  # fmt: skip
        cursor.execute(
            "CREATE TEMP TABLE bench_models (n int, id text, top numeric) ON COMMIT DROP"
        )
        weighted = [(m, top) for m, top, share in MODELS for _ in range(share)]
        for n, (model, top) in enumerate(weighted):
            cursor.execute("INSERT INTO bench_models VALUES (%s, %s, %s)", [n, model, top])
        common.insert_select(
            cursor,
            User,
            {"password": "'!'", "username": "'budget-user-' || lpad(n::text, 5, '0')",
             "email": "''", "is_active": "true", "date_joined": "now()"},
            "FROM generate_series(1, %(users)s) AS n",
            {"users": users},
        )  # fmt: skip
        common.insert_select(
            cursor,
            Team,
            {"id": "gen_random_uuid()", "name": "'Team ' || lpad(n::text, 3, '0')",
             "all_models": "true", "created_at": "now()"},
            "FROM generate_series(1, %(teams)s) AS n",
            {"teams": teams},
        )  # fmt: skip
        # User k is in team k mod teams: people and teams numbered in order.
        cursor.execute(
            "CREATE TEMP TABLE bench_people ON COMMIT DROP AS"
            " SELECT u.id AS user_id, t.id AS team_id, u.rn FROM"
            " (SELECT id, row_number() OVER (ORDER BY id) - 1 AS rn FROM auth_user) u"
            " JOIN (SELECT id, row_number() OVER (ORDER BY name) - 1 AS tn FROM jobs_team) t"
            " ON t.tn = mod(u.rn, %(teams)s)",
            {"teams": teams},
        )
        common.insert_select(
            cursor,
            Membership,
            {"team_id": "team_id", "user_id": "user_id", "role": "'member'",
             "source": "'studio'", "is_default": "true", "created_at": "now()"},
            "FROM bench_people",
        )  # fmt: skip
        common.insert_select(
            cursor,
            ApiToken,
            {"id": "gen_random_uuid()", "user_id": "user_id", "team_id": "team_id",
             "name": "'team script'", "key_hash": "encode(sha256(user_id::text::bytea), 'hex')",
             "prefix": "'ir_bench'", "created_at": "now()"},
            "FROM bench_people",
        )  # fmt: skip
        # Limits high enough that the races below are accepted: the check runs in full either
        # way, and a refusal would only add the exception. Periods mixed on purpose.
        cursor.execute(
            "INSERT INTO jobs_budget (level, \"limit\", period) VALUES (1, 1000000, 'month')"
        )
        common.insert_select(
            cursor, Budget, {"level": "2", "team_id": "id", "limit": "100000", "period": "'month'"},
            "FROM jobs_team",
        )  # fmt: skip
        common.insert_select(
            cursor, Budget,
            {"level": "3", "team_id": "team_id", "user_id": "user_id", "limit": "5000",
             "period": "'week'"},
            "FROM bench_people",
        )  # fmt: skip
        common.insert_select(
            cursor, Budget, {"level": "4", "user_id": "user_id", "limit": "1000",
                             "period": "'month'"},
            "FROM bench_people",
        )  # fmt: skip
        common.insert_select(
            cursor, Budget, {"level": "5", "token_id": "id", "limit": "500", "period": "'day'"},
            "FROM jobs_apitoken",
        )  # fmt: skip
        _seed_jobs(cursor, entries=entries, live=live)
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {table}")
        cursor.execute("RESET statement_timeout")
    return time.perf_counter() - started


def _seed_jobs(cursor, *, entries: int, live: int) -> None:
    from jobs.models import CostEntry, Job

    # Entries from the month's first second to now: 80% charged to the person's team (half of
    # those through their token), 20% personal; 90% charged, 9% refused, 1% unknown and pending.
    cursor.execute(
        """
        CREATE TEMP TABLE bench_seed ON COMMIT DROP AS
        WITH base AS (
            SELECT n, random() AS r_person, random() AS r_where, random() AS r_outcome,
                   random() AS r_time, random() AS r_cost, n %% (SELECT count(*) FROM bench_models)
                   AS pick
            FROM generate_series(1, %(entries)s + %(live)s) AS n
        ),
        people AS (SELECT count(*) AS how_many FROM bench_people)
        SELECT b.n, gen_random_uuid() AS job_id, p.user_id, m.id AS model, m.top,
               CASE WHEN b.r_where < 0.8 THEN p.team_id END AS team_id,
               CASE WHEN b.r_where < 0.4 THEN t.id END AS token_id,
               CASE WHEN b.n > %(entries)s THEN 'live'
                    WHEN b.r_outcome < 0.90 THEN 'charged'
                    WHEN b.r_outcome < 0.99 THEN 'refunded' ELSE 'unknown' END AS outcome,
               date_trunc('month', now()) + b.r_time * (now() - date_trunc('month', now()))
                   AS created_at,
               round(m.top * (0.4 + 0.6 * b.r_cost::numeric), 4) AS charged
        FROM base b CROSS JOIN people
        JOIN bench_people p ON p.rn = floor(b.r_person * people.how_many)::int
        JOIN bench_models m ON m.n = b.pick
        JOIN jobs_apitoken t ON t.user_id = p.user_id
        """,
        {"entries": entries, "live": live},
    )
    common.insert_select(
        cursor,
        Job,
        {"id": "job_id", "owner_id": "user_id", "team_id": "team_id", "token_id": "token_id",
         "prompt": "'a bench video ' || n", "model": "model", "size": "'auto'",
         "seconds": "'5'", "response_format": "'url'",
         "status": """CASE outcome WHEN 'charged' THEN 'succeeded' WHEN 'live'
                      THEN CASE WHEN mod(n, 3) = 0 THEN 'running' ELSE 'queued' END
                      ELSE 'failed' END""",
         "attempt": "CASE WHEN outcome = 'live' THEN mod(n, 3) / 2 ELSE 1 END",
         "outcome_unknown": "outcome = 'unknown'",
         "hold": "CASE WHEN outcome = 'live' THEN top ELSE 0 END",
         "cost": """CASE outcome WHEN 'charged' THEN charged WHEN 'live' THEN NULL
                    ELSE 0 END""",
         "possible_cost": "CASE WHEN outcome = 'unknown' THEN top END",
         "created_at": "CASE WHEN outcome = 'live' THEN now() ELSE created_at END",
         "enqueued_at": "CASE WHEN outcome = 'live' THEN now() ELSE created_at END"},
        "FROM bench_seed",
    )  # fmt: skip
    common.insert_select(
        cursor,
        CostEntry,
        {"job_id": "job_id", "user_id": "user_id", "team_id": "team_id", "token_id": "token_id",
         "model": "model", "outcome": "outcome",
         "cost": "CASE WHEN outcome = 'charged' THEN charged ELSE 0 END",
         "possible_cost": "CASE WHEN outcome = 'unknown' THEN top END",
         "reconciliation": "CASE WHEN outcome = 'unknown' THEN 'pending' ELSE '' END",
         "created_at": "created_at"},
        "FROM bench_seed WHERE outcome <> 'live' ORDER BY created_at",
    )  # fmt: skip
    # The roll-up, summed from the entries exactly as services/ledger.py keeps it.
    cursor.execute(
        """
        INSERT INTO jobs_spendday (scope, day, cost, pending)
        SELECT scope, day, sum(cost), sum(pending) FROM (
            SELECT (created_at AT TIME ZONE 'UTC')::date AS day, cost,
                   CASE WHEN reconciliation = 'pending' THEN possible_cost ELSE 0 END AS pending,
                   team_id, user_id, token_id
            FROM jobs_costentry
        ) e
        CROSS JOIN LATERAL (VALUES
            ('org'),
            (CASE WHEN team_id IS NOT NULL THEN 'team:' || team_id END),
            (CASE WHEN team_id IS NOT NULL THEN 'member:' || team_id || ':' || user_id END),
            (CASE WHEN team_id IS NULL THEN 'user:' || user_id END),
            (CASE WHEN token_id IS NOT NULL THEN 'token:' || token_id END)
        ) AS s(scope)
        WHERE scope IS NOT NULL
        GROUP BY scope, day
        """
    )


# --- Measuring ----------------------------------------------------------------------------------


class Timings(threading.local):
    check_ms: float | None = None
    queries: int = 0
    held_ms: float = 0.0  # from the budget rows' lock to the commit: what others wait for


def counted(execute, sql, params, many, context):
    """Count the submit's queries, and time how long it holds the budget rows (the
    organization's among them): from the locking SELECT's answer to the commit."""
    from django.db import transaction

    TIMINGS.queries += 1
    result = execute(sql, params, many, context)
    if "FOR NO KEY UPDATE" in sql and BUDGET_ROWS.search(sql):
        locked = time.perf_counter()

        def committed():
            TIMINGS.held_ms = (time.perf_counter() - locked) * 1000

        transaction.on_commit(committed)
    return result


TIMINGS = Timings()
BUDGET_ROWS = re.compile(r'FROM "?jobs_budget"? ')  # the ORM's quoted name, or the raw SQL's


def instrument() -> None:
    """Time budget_reserve as job_create calls it (its name in lifecycle.py), in each thread."""
    from jobs.services import lifecycle

    original = lifecycle.budget_reserve

    def timed(**kwargs):
        started = time.perf_counter()
        try:
            return original(**kwargs)
        finally:
            TIMINGS.check_ms = (time.perf_counter() - started) * 1000

    lifecycle.budget_reserve = timed


def one_submit(owner, team, token, n) -> tuple[str, float, float, int, float]:
    """(accepted / refused / error: ..., job_create ms, check ms, queries, ms the budget rows
    were held) for one submit."""
    from django.db import connection

    from jobs import services

    TIMINGS.check_ms, TIMINGS.queries, TIMINGS.held_ms = None, 0, 0.0
    started = time.perf_counter()
    try:
        with connection.execute_wrapper(counted):
            services.job_create(
                owner=owner, team=team, token=token, prompt=f"bench race {n}",
                model=SUBMIT_MODEL, size="auto", seconds="5", response_format="url",
            )  # fmt: skip
        verdict = "accepted"
    except services.SubmitRefusedError:
        verdict = "refused"
    except Exception as exc:
        verdict = f"error: {type(exc).__name__}: {exc}"
    elapsed = (time.perf_counter() - started) * 1000
    return verdict, elapsed, TIMINGS.check_ms or 0.0, TIMINGS.queries, TIMINGS.held_ms


def racing(submitters, racers: int, round_no: int) -> list[tuple]:
    from django.db import connections

    barrier = threading.Barrier(racers)
    results = [None] * racers

    def run(i):
        owner, team, token = submitters[i % len(submitters)]
        try:
            barrier.wait()
            results[i] = one_submit(owner, team, token, f"{round_no}.{i}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def summary(name: str, results: list[tuple], column: int) -> list[str]:
    values = [r[column] for r in results]
    accepted = sum(r[0] == "accepted" for r in results)
    queries = sorted(r[3] for r in results)[len(results) // 2]
    return [name, f"{len(results)}", f"{accepted}", f"{common.percentile(values, 0.5):.1f}",
            f"{common.percentile(values, 0.95):.1f}", f"{max(values):.1f}", f"{queries}"]  # fmt: skip


def one_api_submit(client, token_key: str, n) -> tuple[str, float, float, int, float]:
    """One submit through the API's real view and every middleware, as one_submit returns it."""
    from django.db import connection

    TIMINGS.check_ms, TIMINGS.queries, TIMINGS.held_ms = None, 0, 0.0
    body = json.dumps({"model": SUBMIT_MODEL, "prompt": f"bench arrival {n}", "seconds": "5"})
    started = time.perf_counter()
    try:
        with connection.execute_wrapper(counted):
            response = client.post(
                "/v1/openai/videos/generations?async=true", body,
                content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token_key}",
            )  # fmt: skip
        if response.status_code == 202:
            verdict = "accepted"
        elif response.status_code in (402, 403, 429):
            verdict = "refused"
        else:
            verdict = f"error: HTTP {response.status_code}: {response.content[:200]!r}"
    except Exception as exc:
        verdict = f"error: {type(exc).__name__}: {exc}"
    elapsed = (time.perf_counter() - started) * 1000
    return verdict, elapsed, TIMINGS.check_ms or 0.0, TIMINGS.queries, TIMINGS.held_ms


def spend_member_budgets(people) -> int:
    """Make one person in ten's member budget already spent: its limit what it has used plus
    $0.25, less than a submit's $0.50 hold, so their team submits are refused at that level
    (and the bench sees refusals as well as acceptances) while no level is over."""
    from jobs import selectors
    from jobs.models import Budget

    spent = [
        budget
        for budget in Budget.objects.filter(level=Budget.Level.MEMBER)
        .select_related("team", "user")
        .order_by("user_id")[::10]
    ]
    for status in selectors.budget_statuses(spent):
        limit = (status.used + Decimal("0.25")).quantize(Decimal("0.01"))
        Budget.objects.filter(pk=status.budget.pk).update(limit=limit)
    return len(spent)


def arrivals(
    people, *, rate: int, duration: float, threads: int, processes: int
) -> tuple[list[tuple], list[str]]:
    """Submits arriving at `rate` a second for `duration` seconds, on a fixed schedule, taken by
    `processes` processes of `threads` threads each (this file with --arrive: as several web
    processes, not one Python process's threads sharing its interpreter lock). Returns (path,
    verdict, server ms, check ms, queries, ms late) for each, and the verdicts of the warm-up
    submits each thread made before the schedule began (WARM_UP)."""
    import sys

    from django.db import connections

    # The racers' connections stay open in this process's pool: closed, so that the arrival
    # processes' connections and everyone else's fit under max_connections.
    connections.close_all()
    connections["default"].close_pool()
    spec = {"rate": rate, "duration": duration, "threads": max(1, threads // processes),
            "processes": processes, "start": time.time() + 6.0 + processes}  # fmt: skip
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--arrive", json.dumps({**spec, "index": index})],
            env={**os.environ, "DATABASE_POOL_SIZE": str(spec["threads"] + 1)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(processes)
    ]
    results, warmed = [], []
    for child in children:
        out, _ = child.communicate()
        for line in out.splitlines():
            if line.startswith("RESULT "):
                results.append(tuple(json.loads(line[7:])))
            elif line.startswith("WARM "):
                warmed.append(json.loads(line[5:]))
        if child.returncode:
            results.append(("api", f"error: arrival process exited {child.returncode}", 0, 0, 0, 0))
    return results, warmed


def arrive(spec: dict) -> None:
    """--arrive: one process's share of the arrivals (every `processes`-th, from `index`), on
    the schedule its parent fixed, each printed as a RESULT line of JSON; first, each thread's
    warm-up submits (WARM_UP rounds of the three paths), each printed as a WARM line."""
    from django.db import connections
    from django.test import Client

    from jobs.models import ApiToken

    instrument()
    people = [
        (token.user, token.team, token)
        for token in ApiToken.objects.select_related("user", "team").order_by("user")
    ]
    rng = random.Random(25)
    total = int(spec["rate"] * spec["duration"])
    paths = ["api", "api", "team", "team", "personal"]
    plan = [(paths[n % len(paths)], rng.choice(people)) for n in range(total)]
    mine = range(spec["index"], total, spec["processes"])
    due: queue.Queue = queue.Queue()
    results, warmed = [], []
    connections.close_all()

    def submit(client, path, person, n):
        owner, team, token = person
        if path == "api":
            return one_api_submit(client, str(owner.pk), n)
        if path == "team":
            return one_submit(owner, team, token, f"arrival {n}")
        return one_submit(owner, None, None, f"arrival {n}")

    def work(number):
        client = Client(HTTP_HOST="127.0.0.1")
        try:
            # A web process serves a burst warm: its first requests (the URL map, the
            # middleware, each thread's connections to PostgreSQL and Redis) come long before.
            # Cold, the first 4 s of 100 a second had a p95 of 1.8 s and the rest 19-38 ms.
            chooser = random.Random(f"warm {spec['index']} {number}")
            for round_no in range(WARM_UP):
                for path in ("api", "team", "personal"):
                    n = f"warm {spec['index']}.{number}.{round_no}"
                    warmed.append(submit(client, path, chooser.choice(people), n)[0])
            while (item := due.get()) is not None:
                n, at = item
                path, person = plan[n]
                late = (time.time() - at) * 1000
                results.append((path, *submit(client, path, person, n), late))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(spec["threads"])]
    for worker in workers:
        worker.start()
    for n in mine:
        at = spec["start"] + n / spec["rate"]
        delay = at - time.time()
        if delay > 0:
            time.sleep(delay)
        due.put((n, at))
    for _ in workers:
        due.put(None)
    for worker in workers:
        worker.join()
    for verdict in warmed:
        print("WARM " + json.dumps(verdict), flush=True)
    for result in results:
        print("RESULT " + json.dumps(result), flush=True)


def arrival_summary(name: str, results: list[tuple]) -> list[str]:
    values = [r[2] for r in results]
    checks = [r[3] for r in results]
    held = [r[5] for r in results if r[5]] or [0.0]
    late = [r[6] for r in results]
    accepted = sum(r[1] == "accepted" for r in results)
    refused = sum(r[1] == "refused" for r in results)
    queries = sorted(r[4] for r in results)[len(results) // 2]
    return [name, f"{len(results)}", f"{accepted}", f"{refused}",
            f"{common.percentile(values, 0.5):.1f}", f"{common.percentile(values, 0.95):.1f}",
            f"{max(values):.1f}", f"{common.percentile(checks, 0.95):.1f}",
            f"{common.percentile(held, 0.5):.1f} / {common.percentile(held, 0.95):.1f}",
            f"{common.percentile(late, 0.95):.1f}", f"{queries}"]  # fmt: skip


def check_levels() -> list[str]:
    """Problems found: a level over its limit, a roll-up row that differs from the ledger."""
    from django.db import connection

    from jobs import selectors
    from jobs.models import Budget

    problems = []
    budgets = list(Budget.objects.exclude(limit=None).select_related("team", "user", "token"))
    statuses = []
    for start in range(0, len(budgets), 500):  # one aggregate column per budget: in batches
        statuses += selectors.budget_statuses(budgets[start : start + 500])
    for status in statuses:
        if status.used > status.limit:
            problems.append(f"{status.label} is over: {status.used} of {status.limit}")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH e AS (
                SELECT (created_at AT TIME ZONE 'UTC')::date AS day, cost,
                       CASE WHEN reconciliation = 'pending' THEN possible_cost ELSE 0 END AS p,
                       team_id, user_id, token_id FROM jobs_costentry),
            sums AS (
                SELECT scope, day, sum(cost) AS cost, sum(p) AS pending FROM e
                CROSS JOIN LATERAL (VALUES ('org'),
                    (CASE WHEN team_id IS NOT NULL THEN 'team:' || team_id END),
                    (CASE WHEN team_id IS NOT NULL THEN 'member:' || team_id || ':' || user_id END),
                    (CASE WHEN team_id IS NULL THEN 'user:' || user_id END),
                    (CASE WHEN token_id IS NOT NULL THEN 'token:' || token_id END)) AS s(scope)
                WHERE scope IS NOT NULL GROUP BY scope, day)
            SELECT count(*) FROM sums FULL JOIN jobs_spendday r USING (scope, day)
            WHERE r.cost IS DISTINCT FROM sums.cost OR r.pending IS DISTINCT FROM sums.pending
            """
        )
        differing = cursor.fetchone()[0]
    if differing:
        problems.append(f"{differing} roll-up rows differ from the ledger's sums")
    return problems


# --- Running ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="videostudio_budgets")
    parser.add_argument("--entries", type=int, default=100_000, help="ledger entries this month")
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--live", type=int, default=3_000, help="live jobs holding money")
    parser.add_argument("--racers", type=int, default=50, help="submits released together")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of racing submits")
    parser.add_argument("--rate", type=int, default=100, help="submits arriving a second")
    parser.add_argument("--duration", type=float, default=30, help="seconds of arrivals")
    parser.add_argument("--threads", type=int, default=32, help="threads taking arrivals, in all")
    parser.add_argument("--processes", type=int, default=4, help="processes taking arrivals")
    parser.add_argument("--arrive", help=argparse.SUPPRESS)  # one process's share (internal)
    parser.add_argument("--markdown", action="store_true", help="tables for BENCHMARKS.md")
    common.add_tiny_option(
        parser,
        f"{TINY['entries']:,} entries, {TINY['users']} users in {TINY['teams']} teams,"
        f" {TINY['racers']} racing submits, its own database ({TINY['database']})",
    )
    args = common.parse_args(parser, TINY)
    if args.arrive:  # a child of arrivals(): Django's settings are in the environment
        common.django_setup({})
        logging.getLogger("django.request").setLevel(logging.ERROR)
        arrive(json.loads(args.arrive))
        return
    common.check_database_name(args.database)
    common.ensure_database(args.database, reseed=True, statement_timeout="120s")
    with tempfile.TemporaryDirectory(prefix="bench-budgets-") as directory:
        redis_process, redis_url = start_redis(directory)
        try:
            common.django_setup(
                {
                    "DATABASE_URL": f"{common.SERVER_URL}/{args.database}",
                    "REDIS_URL": redis_url,
                    # One connection per racing thread, as 50 web processes would each have.
                    "DATABASE_POOL_SIZE": str(max(args.racers, args.threads) + 5),
                    # The per-minute rate and the active-job cap are Redis counters and a count
                    # of the person's jobs, not the budget check; off, so every submit reaches it.
                    "JOB_SUBMITS_PER_MINUTE": "0",
                    "JOB_ACTIVE_LIMIT": "0",
                    "GATEWAY_REQUESTS_PER_MINUTE": "0",
                    "DJANGO_DEBUG": "false",
                    "LOG_LEVEL": "WARNING",
                    "MEDIA_ROOT": directory,
                }
            )
            ok = bench(args)
        finally:
            common.stop_process(redis_process)
    raise SystemExit(0 if ok else 1)


def bench(args) -> bool:
    from django.db import connection
    from django.db.models import Q

    from jobs.models import ApiToken, Job, Team

    common.migrate()
    # Each refused API submit is a 402, which django.request logs as a warning: not news here.
    logging.getLogger("django.request").setLevel(logging.ERROR)
    print(
        f"seeding {args.users:,} users in {args.teams} teams, {args.entries:,} ledger entries"
        f" this month and {args.live:,} live jobs into {args.database} ..."
    )
    seconds = seed(users=args.users, teams=args.teams, entries=args.entries, live=args.live)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM jobs_costentry), (SELECT count(*) FROM jobs_spendday),"
            " (SELECT count(*) FROM jobs_budget), (SELECT count(*) FROM jobs_job"
            "  WHERE status IN ('queued', 'running', 'storing'))"
        )
        entries, days, budgets, live = cursor.fetchone()
    print(
        f"seeded in {seconds:.1f} s: {entries:,} ledger entries, {days:,} roll-up rows,"
        f" {budgets:,} budgets, {live:,} live jobs; load average {common.loadavg()}"
    )
    instrument()
    team = Team.objects.order_by("name").first()
    submitters = [
        (token.user, team, token)
        for token in ApiToken.objects.filter(team=team).select_related("user").order_by("user")
    ]
    print(
        f"submitters: the {len(submitters)} members of {team.name}, each through their team"
        f" token, on {SUBMIT_MODEL} (holds $0.50); levels locked: organization, team, member,"
        " personal, token"
    )
    # Warm-up: connections, the ORM's caches.
    warm = [one_submit(*submitters[n % len(submitters)], f"warm {n}") for n in range(5)]
    alone = [one_submit(*submitters[n % len(submitters)], f"alone {n}") for n in range(50)]
    raced = []
    for round_no in range(args.rounds):
        raced += racing(submitters, args.racers, round_no)
    rows = [
        summary("job_create, one at a time", alone, 1),
        summary("  the check alone", alone, 2),
        summary("  the budget rows held", alone, 4),
        summary(f"job_create, {args.racers} racing", raced, 1),
        summary("  the check alone", raced, 2),
        summary("  the budget rows held", raced, 4),
    ]
    title = (
        f"Submit-time budget check, every level set ({args.rounds} rounds of {args.racers}"
        " racing submits into one team; ms, wall clock in-process)"
    )
    header = ["what", "submits", "accepted", "p50 ms", "p95 ms", "max ms", "queries"]
    common.print_table(title, header, rows, markdown=args.markdown, load=True)

    arrived, warmed = [], []
    if args.rate > 0:
        people = [
            (token.user, token.team, token)
            for token in ApiToken.objects.select_related("user", "team").order_by("user")
        ]
        spent = spend_member_budgets(people)
        print(
            f"\narrivals: {args.rate} submits a second for {args.duration:g} s from all"
            f" {len(people):,} people in {args.teams} teams, taken by {args.processes} processes"
            f" of {max(1, args.threads // args.processes)} threads, each warmed by"
            f" {WARM_UP * 3} submits first; {spent} member budgets already spent (their team submits are refused)"
        )
        arrived, warmed = arrivals(
            people,
            rate=args.rate,
            duration=args.duration,
            threads=args.threads,
            processes=args.processes,
        )
        rows = [
            arrival_summary(name, [r for r in arrived if r[0] == path])
            for path, name in [
                ("api", "API view, team token (5 levels)"),
                ("team", "job_create, team token (5 levels)"),
                ("personal", "job_create, personal (2 levels)"),
            ]
        ]
        rows.append(arrival_summary("all", arrived))
        title = (
            f"{args.rate} submits a second for {args.duration:g} s, every level set (ms,"
            " in-process server time; check: budget_reserve, lock waits included; rows held:"
            " from the budget rows' lock to the commit; late: p95 of the start behind schedule)"
        )
        header = ["path", "submits", "accepted", "refused", "p50 ms", "p95 ms", "max ms",
                  "check p95", "rows held p50 / p95", "late p95", "queries"]  # fmt: skip
        common.print_table(title, header, rows, markdown=args.markdown, load=True)

    outcomes = [r[0] for r in warm + alone + raced] + [r[1] for r in arrived] + warmed
    errors = [verdict for verdict in outcomes if verdict.startswith("error")]
    problems = check_levels()
    accepted = sum(verdict == "accepted" for verdict in outcomes)
    saved = Job.objects.filter(
        Q(prompt__startswith="bench race") | Q(prompt__startswith="bench arrival")
    ).count()
    if saved != accepted:
        problems.append(f"{accepted} accepted but {saved} jobs saved")
    for problem in errors[:5] + problems:
        print(f"PROBLEM: {problem}")
    verdict = "no level over its limit, roll-up equals the ledger, no errors"
    print(f"\n{accepted} of {len(outcomes)} submits accepted; " + (
        verdict if not errors and not problems else "checks FAILED"
    ))  # fmt: skip
    print(f"load average at the end: {common.loadavg()}")
    return not errors and not problems


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
