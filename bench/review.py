"""How fast is the cost review with 10 M jobs over 12 months, staff's by team and a team
manager's, for a month, 90 days and 12 months? (Under 300 ms: issue 25.)

    .venv/bin/python bench/review.py              # reuse the seeded database if it is there
    .venv/bin/python bench/review.py --reseed     # drop it and seed again (minutes at 10 M)
    .venv/bin/python bench/review.py --jobs 1000000  # a smaller ledger
    .venv/bin/python bench/review.py --before     # also the figures as the ledger adds them up
    .venv/bin/python bench/review.py --experiment # also time the fixes in BENCHMARKS.md

1. Makes (or reuses) a dedicated PostgreSQL database, `videostudio_bench` on 127.0.0.1:5432, and
   runs `migrate` on it. It refuses the `videostudio` and `test_*` databases.
2. Seeds 1,000 users in 50 teams (each user in one team, a tenth of them its managers; every
   team with a monthly budget) and `--jobs` jobs (10,000,000) with one ledger entry each,
   spread over the 365 days before the seed, on 10 models: about 90% charged, 9% refused (cost 0), 1% unknown
   (possible cost, pending for the last 30 days, reconciled before that). Half the jobs are
   charged to their owner's team, half to their personal space; the budgets' daily roll-up
   (SpendDay) and the reviews' (LedgerDay, LedgerUserSpan) are filled from the same rows, as
   the ledger's transactions would have (the reviews' by migration 0020's own SQL). The rows are made by PostgreSQL itself
   (`INSERT ... SELECT generate_series`), so nothing is held in Python's memory; secondary
   indexes are dropped during the load and rebuilt after it, then `VACUUM ANALYZE`.
3. Times the review pages in-process through Django's whole stack (`django.test.Client`,
   middleware, session, view, template), logged in as a staff user, then the team's pages
   (review, drill-down, CSV, member budgets) logged in as a manager (not staff) of the team
   with the most entries; the review pages for a month, 90 days and 12 months. Each page gets
   warm-up
   runs, then `--runs` timed runs; the SQL is counted with `CaptureQueriesContext`. Streaming
   responses (the CSV) are timed to the first chunk and to the last.
4. Times the queries behind those pages on their own (the selectors the views call: by user,
   by team, by day and model, reconciliation), and prints `EXPLAIN (ANALYZE, BUFFERS)` for the
   slowest query of the review and reconciliation pages.

With `--before` it also times the same figures as the review got them before the roll-ups, by
aggregating the period's ledger entries (the selectors the weekly digest still uses), with
fewer runs: at 10 M entries a year of them takes seconds.

With `--experiment` it also times the proposed fixes (see BENCHMARKS.md): other query shapes,
extended statistics and daily roll-up tables. Anything it creates is raw SQL in the bench
database only, and it is dropped again, so the bench database keeps matching the migrations.
"""

import argparse
import importlib
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from urllib.parse import urlencode

import common

SEED_VERSION = 3  # bump when the seeded data changes shape, so old bench databases are redone
# --tiny: the same path end to end in seconds: 2,000 jobs from 20 users, seeded again on every
# run (so the seed meets the current schema), one timed run of each page, in a database and a
# Redis database (cache, sessions) of its own.
TINY = {"jobs": 2_000, "users": 20, "runs": 1, "warmup": 0, "database": "videostudio_bench_tiny",
        "redis_url": "redis://127.0.0.1:6379/4"}  # fmt: skip

# id, price_min, price_max, seconds, sizes, share of jobs (the weights need not add up to 1)
MODELS = [
    ("kling/kling-2.1-standard", "0.18", "0.50", ["5", "10"], ["1280x720", "720x1280"], 24),
    ("google/veo-3.1-fast", "0.60", "0.60", ["4", "6", "8"], ["1280x720", "720x1280"], 18),
    ("minimax/hailuo-2.3", "0.28", "0.49", ["6"], ["1366x768", "1920x1080"], 14),
    ("openai/sora-2", "0.40", "1.20", ["4", "8", "12"], ["1280x720", "720x1280"], 12),
    ("wan-ai/wan-2.5", "0.25", "0.75", ["5", "10"], ["1280x720"], 9),
    ("bytedance/seedance-1-pro", "0.30", "1.10", ["5", "10"], ["1280x720", "960x960"], 7),
    ("kling/kling-2.5-turbo-pro", "0.35", "0.70", ["5", "10"], ["1920x1080"], 6),
    ("google/veo-3.1", "1.60", "3.20", ["4", "6", "8"], ["1920x1080", "1080x1920"], 4),
    ("openai/sora-2-pro", "1.20", "6.00", ["4", "8", "12"], ["1792x1024", "1024x1792"], 3),
    ("ir/test-video", "0", "0", ["5"], ["640x360", "1280x720"], 3),
]

STAFF_USERNAME = "bench-admin"
TEAMS = 50
SEEDED_DAYS = 365  # the ledger covers the 365 days before the seed


# --- Seeding ------------------------------------------------------------------------------------


def seed(*, jobs: int, users: int, days: int) -> tuple[datetime, float]:
    """Fill the bench database, migrated first, through its schema: every column the seed does
    not name gets the model field's default (common.insert_select). Returns the anchor (the end
    of the seeded period) and the time."""
    from django.db import connection, transaction

    anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        common.begin_bulk_seed(cursor)
        cursor.execute(
            "TRUNCATE jobs_costentry, jobs_notice, jobs_job, jobs_budget, jobs_spendday,"
            " jobs_ledgerday, jobs_ledgeruserspan,"
            " jobs_membership, jobs_team, jobs_videomodel, django_admin_log, django_session,"
            " auth_user CASCADE"
        )
        _seed_catalog(cursor, anchor)
        _seed_users(cursor, users)
        _seed_teams(cursor)
        dropped = common.drop_secondary_indexes(cursor, ["jobs_job", "jobs_costentry"])
        _seed_jobs(cursor, jobs=jobs, days=days, anchor=anchor)
        _seed_spend_days(cursor)
        _seed_review_rollups(cursor)
        for statement in dropped:
            cursor.execute(statement)
        seconds = time.perf_counter() - started
        common.record_seed(
            cursor, version=SEED_VERSION, jobs=jobs, users=users, anchor=anchor, seconds=seconds
        )
    with connection.cursor() as cursor:
        common.vacuum_analyze(
            cursor,
            [
                "auth_user",
                "jobs_job",
                "jobs_costentry",
                "jobs_budget",
                "jobs_videomodel",
                "jobs_team",
                "jobs_membership",
                "jobs_spendday",
                "jobs_ledgerday",
                "jobs_ledgeruserspan",
            ],
        )
    return anchor, time.perf_counter() - started


def _seed_catalog(cursor, anchor):
    from jobs.models import VideoModel

    VideoModel.objects.bulk_create(
        VideoModel(
            id=model_id,
            name=model_id,
            pricing="fixed" if low == high else "calculated",
            price_min=Decimal(low),
            price_average=(Decimal(low) + Decimal(high)) / 2,
            price_max=Decimal(high),
            seconds=[int(x) for x in seconds],
            default_seconds=int(seconds[0]),
            sizes=sizes,
            accepts_image=False,
            synced_at=anchor,
        )
        for model_id, low, high, seconds, sizes, _share in MODELS
    )
    # The same table as a temporary one with cumulative shares, for picking a model per job.
    cursor.execute(
        "CREATE TEMP TABLE bench_models (id text, price_min numeric, price_max numeric,"
        " seconds text[], sizes text[], share_from float, share_to float) ON COMMIT DROP"
    )
    total = sum(m[5] for m in MODELS)
    cumulative = 0.0
    for model_id, low, high, seconds, sizes, share in MODELS:
        start, cumulative = cumulative, cumulative + share / total
        cursor.execute(
            "INSERT INTO bench_models VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                model_id,
                low,
                high,
                seconds,
                sizes,
                start,
                1.0 if model_id == MODELS[-1][0] else cumulative,
            ],
        )


def _seed_users(cursor, users):
    from django.contrib.auth.models import User

    from jobs.models import Budget

    # A real password hash for the staff user only; force_login does not need it anyway.
    common.insert_select(
        cursor,
        User,
        {
            "password": "'!'",
            "username": "'bench-user-' || lpad(n::text, 5, '0')",
            "email": "'bench-user-' || n || '@example.com'",
            "is_active": "true",
            "date_joined": "now() - interval '200 days'",
        },
        "FROM generate_series(1, %(users)s) AS n",
        {"users": users},
    )
    User.objects.create_superuser(STAFF_USERNAME, "bench-admin@example.com", None)
    # A third of the users have a monthly budget between $50 and $500.
    common.insert_select(
        cursor,
        Budget,
        {
            "user_id": "id",
            "level": "4",
            "period": "'month'",
            "limit": "50 + mod(id * 37, 451)",
        },
        "FROM auth_user WHERE username LIKE %(pattern)s AND mod(id, 3) = 0",
        {"pattern": "bench-user-%"},
    )


def _seed_teams(cursor):
    """50 teams with a monthly budget; user k is in team k mod 50 (its default team), and a tenth
    of the users manage theirs. The heavy users (the first ids) spread over the teams."""
    from jobs.models import Budget, Membership, Team

    common.insert_select(
        cursor,
        Team,
        {
            "id": "gen_random_uuid()",
            "name": "'Bench team ' || lpad(n::text, 2, '0')",
            "created_at": "now() - interval '200 days'",
        },
        "FROM generate_series(1, %(teams)s) AS n",
        {"teams": TEAMS},
    )
    common.insert_select(
        cursor,
        Membership,
        {
            "team_id": "t.id",
            "user_id": "u.id",
            "role": "CASE WHEN u.n <= %(teams)s OR mod(u.n, 10) = 1 THEN 'manager' ELSE 'member' END",
            "is_default": "true",
            "created_at": "now() - interval '200 days'",
        },
        """FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM auth_user
                 WHERE username LIKE 'bench-user-%%') AS u
           JOIN (SELECT id, row_number() OVER (ORDER BY name) - 1 AS k FROM jobs_team) AS t
             ON t.k = mod(u.n - 1, %(teams)s)""",
        {"teams": TEAMS},
    )
    common.insert_select(
        cursor,
        Budget,
        {"team_id": "id", "level": "2", "period": "'month'", "limit": "5000"},
        "FROM jobs_team",
    )


def _seed_spend_days(cursor):
    """The daily roll-up per budget scope, from the ledger just loaded (services.ledger keeps it
    so in the app): the organization, each team, each member in a team, each personal space."""
    cursor.execute(
        """
        INSERT INTO jobs_spendday (scope, day, cost, pending)
        SELECT scope, day, sum(cost), sum(pending) FROM (
            SELECT (created_at AT TIME ZONE 'UTC')::date AS day, cost,
                   CASE WHEN reconciliation = 'pending' THEN possible_cost ELSE 0 END AS pending,
                   unnest(CASE WHEN team_id IS NULL
                          THEN ARRAY['org', 'user:' || user_id]
                          ELSE ARRAY['org', 'team:' || team_id,
                                     'member:' || team_id || ':' || user_id]
                          END) AS scope
            FROM jobs_costentry
        ) AS e GROUP BY scope, day
        """
    )


def _seed_review_rollups(cursor):
    """The reviews' roll-ups from the ledger just loaded, by the same GROUP BY as the migration
    that made them (0020), so the bench reads what a migrated studio would."""
    migration = importlib.import_module("jobs.migrations.0022_ledger_rollups")
    for statement in migration.fill_sql("postgresql"):
        cursor.execute(statement)


def _seed_jobs(cursor, *, jobs, days, anchor):
    from jobs.models import CostEntry, Job

    # One staging row per job, so the job and its ledger entry agree. Users are skewed (a few
    # heavy users, a long tail): user k is picked with weight about 1/sqrt(k).
    cursor.execute(
        """
        CREATE TEMP TABLE bench_seed ON COMMIT DROP AS
        WITH base AS (
            SELECT n, random() AS r_user, random() AS r_model, random() AS r_time,
                   random() AS r_outcome, random() AS r_cost, random() AS r_pick
            FROM generate_series(1, %(jobs)s) AS n
        ),
        people AS (
            -- Each person's team (they are in one) by the same index as their id: a join to
            -- the memberships after picking would sort 10 M rows, each carrying these arrays
            -- (a 40 GB temporary file).
            SELECT array_agg(u.id ORDER BY u.id) AS ids,
                   array_agg(ms.team_id ORDER BY u.id) AS teams, count(*) AS how_many
            FROM auth_user u LEFT JOIN jobs_membership ms ON ms.user_id = u.id
            WHERE u.username LIKE 'bench-user-%%'
        ),
        picked AS (
            SELECT b.n, b.r_cost, b.r_pick, m.id, m.price_min, m.price_max, m.seconds, m.sizes,
                   p.ids[1 + floor(power(b.r_user, 2) * p.how_many)::int] AS user_id,
                   p.teams[1 + floor(power(b.r_user, 2) * p.how_many)::int] AS member_team,
                   %(anchor)s - b.r_time * %(days)s * interval '1 day' AS created_at,
                   CASE WHEN b.r_outcome < 0.90 THEN 'charged'
                        WHEN b.r_outcome < 0.99 THEN 'refunded'
                        ELSE 'unknown' END AS outcome
            FROM base b
            JOIN bench_models m ON b.r_model >= m.share_from AND b.r_model < m.share_to
            CROSS JOIN people p
        )
        SELECT n, gen_random_uuid() AS job_id, picked.user_id, picked.id AS model, outcome,
               created_at, CASE WHEN mod(n, 2) = 0 THEN member_team END AS team_id,
               sizes[1 + floor(r_pick * array_length(sizes, 1))::int] AS size,
               seconds[1 + floor(r_cost * array_length(seconds, 1))::int] AS seconds,
               (20000 + r_cost * 180000)::int AS latency_ms,
               CASE WHEN outcome = 'charged'
                    THEN round(price_min + (price_max - price_min) * r_cost::numeric, 4) END AS charged,
               CASE WHEN outcome = 'unknown' THEN price_max END AS possible_cost,
               CASE WHEN outcome <> 'unknown' THEN ''
                    WHEN created_at > %(anchor)s - interval '30 days' THEN 'pending'
                    WHEN mod(n, 2) = 0 THEN 'charged' ELSE 'not_charged' END AS reconciliation
        FROM picked
        """,
        {"jobs": jobs, "days": days, "anchor": anchor},
    )
    common.insert_select(
        cursor,
        Job,
        {
            "id": "job_id",
            "owner_id": "user_id",
            "team_id": "team_id",
            "prompt": "'A bench video, number ' || n",
            "model": "model",
            "size": "size",
            "seconds": "seconds",
            "response_format": "'url'",
            "status": "CASE WHEN outcome = 'charged' THEN 'succeeded' ELSE 'failed' END",
            "attempt": "1",
            "error": """CASE outcome WHEN 'charged' THEN ''
                 WHEN 'refunded' THEN 'The provider refused the request; nothing was charged.'
                 ELSE 'Outcome unknown: the provider may have charged for this' END""",
            "outcome_unknown": "outcome = 'unknown'",
            "hold": "0",
            "cost": """CASE outcome WHEN 'charged' THEN charged WHEN 'refunded' THEN 0
                 ELSE CASE reconciliation WHEN 'charged' THEN possible_cost
                      WHEN 'not_charged' THEN 0 END END""",
            "possible_cost": "possible_cost",
            "latency_ms": "CASE WHEN outcome = 'charged' THEN latency_ms END",
            "provider_url": """CASE WHEN outcome = 'charged'
                 THEN 'https://storage.example/bench/' || n || '.mp4' ELSE '' END""",
            "video": "CASE WHEN outcome = 'charged' THEN 'videos/bench/' || n || '.mp4' ELSE '' END",
            "created_at": "created_at",
            "enqueued_at": "created_at",
            "started_at": "created_at + interval '1 second'",
            "finished_at": "created_at + latency_ms * interval '1 millisecond'",
            "deleted_at": "CASE WHEN mod(n, 40) = 0 THEN created_at + interval '1 hour' END",
        },
        "FROM bench_seed",
    )
    common.insert_select(
        cursor,
        CostEntry,
        {
            "job_id": "job_id",
            "user_id": "user_id",
            "team_id": "team_id",
            "model": "model",
            "outcome": "outcome",
            "cost": """CASE outcome WHEN 'charged' THEN charged
                 WHEN 'unknown' THEN CASE WHEN reconciliation = 'charged' THEN possible_cost
                                          ELSE 0 END
                 ELSE 0 END""",
            "possible_cost": "possible_cost",
            "reconciliation": "reconciliation",
            "reconciled_by_id": """CASE WHEN reconciliation IN ('charged', 'not_charged')
                 THEN (SELECT id FROM auth_user WHERE username = %(staff)s) END""",
            "reconciled_at": """CASE WHEN reconciliation IN ('charged', 'not_charged')
                 THEN created_at + interval '2 days' END""",
            "created_at": "created_at + latency_ms * interval '1 millisecond'",
        },
        "FROM bench_seed ORDER BY created_at",
        {"staff": STAFF_USERNAME},
    )


# --- Measuring ----------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    period: str
    runs_ms: list[float]
    queries: int
    sql_ms: float  # median time spent in SQL, as Django's cursor wrapper saw it
    first_ms: float | None = None  # streaming: the first chunk
    first_row_ms: float | None = None  # streaming: the first chunk with a data row in it
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.runs_ms)

    @property
    def p95(self) -> float:
        return common.percentile(self.runs_ms, 0.95)


class Measurer:
    """Runs each thing `warmup` times untimed, then `runs` times timed (wall clock,
    time.perf_counter), counting and timing its SQL with CaptureQueriesContext."""

    def __init__(self, *, runs: int, warmup: int):
        from django.contrib.auth.models import User
        from django.test import Client

        self.runs = runs
        self.warmup = warmup
        # A loopback host passes ALLOWED_HOSTS without setup_test_environment(), whose template
        # instrumentation would slow rendering down and skew the figures.
        self.client = Client(HTTP_HOST="localhost")
        self.client.force_login(User.objects.get(username=STAFF_USERNAME))
        self.queries: dict[str, list[tuple[float, str]]] = {}  # where: its last timed run's SQL

    def page(self, name, period, url, *, streaming=False, runs=None, client=None) -> Result:
        """GET `url` through the whole Django stack (as staff, or as `client`'s user); a
        streaming response is read to the end."""
        client = client or self.client

        def get():
            response = client.get(url)
            if response.status_code != 200:
                raise RuntimeError(f"GET {url} answered {response.status_code}")
            if not response.streaming:
                assert not streaming, f"{url} was expected to stream"
                return response.content, ()
            # When the first chunk came, and the first chunk with a data row (past the header).
            first = first_row = None
            lines = 0
            for chunk in response.streaming_content:
                now = time.perf_counter()
                first = first or now
                lines += chunk.count(b"\n")
                if first_row is None and lines >= 2:
                    first_row = now
            response.close()
            return None, [first, first_row or first]

        return self._measure(name, period, get, runs=runs)

    def call(self, name, period, function, *, runs=None, streaming=False) -> Result:
        """Time `function()`, which returns the rows it fetched (or an iterator of them); with
        `streaming`, also the time to the first row."""

        def run():
            marks, rows = [], 0
            for _row in function():
                rows += 1
                if len(marks) < 2:
                    marks.append(time.perf_counter())
            return rows, marks

        result = self._measure(name, period, run, runs=runs)
        result.first_row_ms = result.first_ms if streaming else None
        result.first_ms = None
        return result

    def _measure(self, name, period, action, *, runs) -> Result:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        totals, firsts, first_rows, sql_times = [], [], [], []
        for run in range(self.warmup + (runs or self.runs)):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                body, marks = action()
                elapsed = time.perf_counter() - started
            if run < self.warmup:
                continue
            totals.append(elapsed * 1000)
            if marks:
                firsts.append((marks[0] - started) * 1000)
                first_rows.append((marks[-1] - started) * 1000)
            sql_times.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
            self.queries[f"{name}, {period}"] = [
                (float(q["time"]), q["sql"]) for q in captured.captured_queries
            ]
        return Result(
            name,
            period,
            totals,
            len(captured),
            statistics.median(sql_times),
            statistics.median(firsts) if firsts else None,
            statistics.median(first_rows) if first_rows else None,
            note=f"{body:,} rows" if isinstance(body, int) else "",
        )

    def slowest_query(self, where: str) -> tuple[float, str]:
        return max(self.queries.get(where, []), default=(0.0, ""))


def explain(sql_text: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql_text)
        return "\n".join(row[0] for row in cursor.fetchall())


# --- What is measured ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    name: str
    first_day: date
    last_day: date  # inclusive, as the review's form takes it

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, datetime.min.time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=(self.last_day - self.first_day).days + 1)

    @property
    def query(self) -> dict:
        return {"from": self.first_day.isoformat(), "to": self.last_day.isoformat()}


def periods(anchor: datetime) -> tuple[Period, Period, Period]:
    """The last full calendar month of the seeded data, the last 90 days and the last 12 months
    (whole UTC days, to the seed's day: they start and end mid-month)."""
    this_month = anchor.date().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    return (
        Period(f"month {last_month:%Y-%m}", last_month, this_month - timedelta(days=1)),
        Period("90 days", (anchor - timedelta(days=89)).date(), anchor.date()),
        Period("12 months", (anchor - timedelta(days=364)).date(), anchor.date()),
    )


HEAVY_USER = "bench-user-00001"  # the seed gives the first user the most jobs
BUSY_MODEL = MODELS[0][0]  # and the first model the largest share


def busiest_team():
    """(team, a manager of it) for the team with the most ledger entries, or (None, None) in a
    checkout without teams."""
    from django.db.models import Count

    from jobs.models import CostEntry, Membership

    top = (
        CostEntry.objects.filter(team__isnull=False)
        .values("team_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    if top is None:
        return None, None
    manager = (
        Membership.objects.filter(team_id=top["team_id"], role=Membership.Role.MANAGER)
        .select_related("team", "user")
        .order_by("user_id")
        .first()
    )
    return (manager.team, manager.user) if manager else (None, None)


def review_pages(anchor: datetime, team=None) -> list[tuple[str, Period, str, bool]]:
    """(page, period, URL, streams) for each staff review page this checkout has. The review
    page holds the tables by user, team, model and day."""
    from django.urls import NoReverseMatch, reverse

    month, days, year = periods(anchor)
    wanted = [
        ("review", month, "review", {}, False),
        ("review", days, "review", {}, False),
        ("review", year, "review", {}, False),
        (f"drill-down: user {HEAVY_USER}", year, "entries", {"user": HEAVY_USER}, False),
        ("reconciliation", year, "reconciliation", {}, False),
        ("CSV export", month, "export", {}, True),
        (f"drill-down: user {HEAVY_USER}", month, "entries", {"user": HEAVY_USER}, False),
        (f"drill-down: model {BUSY_MODEL}", month, "entries", {"model": BUSY_MODEL}, False),
        ("reconciliation", month, "reconciliation", {}, False),
        ("reconciliation, all unknown", month, "reconciliation", {"show": "all"}, False),
    ]
    if team is not None:
        wanted[8:8] = [
            ("drill-down: busiest team", month, "entries", {"team": str(team.pk)}, False),
            ("drill-down: personal spaces", month, "entries", {"team": "personal"}, False),
        ]
    pages = []
    for name, period, url_name, extra, streams in wanted:
        try:
            url = reverse(f"costs:{url_name}")
        except NoReverseMatch:
            continue
        pages.append((name, period, f"{url}?{urlencode({**extra, **period.query})}", streams))
    return pages


def team_pages(anchor: datetime, team, member: str) -> list[tuple[str, Period, str, bool]]:
    """(page, period, URL, streams) for a team's managers' pages."""
    from django.urls import reverse

    month, days, year = periods(anchor)
    wanted = [
        ("team review", month, "review", {}, False),
        ("team review", days, "review", {}, False),
        ("team review", year, "review", {}, False),
        (f"team drill-down: member {member}", year, "entries", {"user": member}, False),
        ("team CSV export", month, "export", {}, True),
        (f"team drill-down: member {member}", month, "entries", {"user": member}, False),
        (f"team drill-down: model {BUSY_MODEL}", month, "entries", {"model": BUSY_MODEL}, False),
    ]
    pages = [
        (
            name,
            period,
            f"{reverse(f'teams:{url}', args=[team.pk])}?{urlencode({**extra, **period.query})}",
            streams,
        )
        for name, period, url, extra, streams in wanted
    ]
    pages.append(("member budgets", month, reverse("teams:budgets", args=[team.pk]), False))
    return pages


def page_queries(period: Period):
    """The queries behind the review and reconciliation pages, as the views call them."""
    from jobs import selectors

    entries = selectors.ledger_for_period(start=period.start, end=period.end)
    days_of = {"first_day": period.first_day, "last_day": period.last_day}
    return [
        ("review: by user", lambda: selectors.review_by_user(**days_of)),
        ("review: by team", lambda: selectors.spend_by_team(**days_of)),
        ("review: by day and model", lambda: review_days_and_models(period)),
        ("reconciliation: totals", lambda: [selectors.reconciliation_totals(**days_of)]),
        (
            "reconciliation: to check, page 1",
            lambda: selectors.unknown_outcomes(entries, pending_only=True)[:50],
        ),
        (
            "reconciliation: all unknown, page 1",
            lambda: selectors.unknown_outcomes(entries, pending_only=False)[:50],
        ),
    ]


def review_days_and_models(period: Period):
    from jobs import selectors

    days, models = selectors.review_by_day_and_model(
        first_day=period.first_day, last_day=period.last_day
    )
    return [*days, *models]


def ledger_queries(period: Period, team=None):
    """The same figures as the review got them before the roll-ups: aggregates of the period's
    ledger entries (by user; by day and model, which gave the by-day table, the by-model table
    and the totals; by team), all or a team's."""
    from django.db.models import Count, Sum

    from jobs import selectors

    def entries():
        return selectors.ledger_for_period(start=period.start, end=period.end, team=team)

    def by_day_and_model():
        days, models = selectors.spend_by_day_and_model(
            entries(), first_day=period.first_day, last_day=period.last_day
        )
        return [*days, *models]

    where = "" if team is None else ", team"
    queries = [
        (f"ledger{where}: by user", lambda: selectors.spend_by_user(entries())),
        (f"ledger{where}: by day and model", by_day_and_model),
    ]
    if team is None:
        queries.append(
            (
                "ledger: by team",
                lambda: entries().values("team_id").annotate(t=Sum("cost"), n=Count("id")),
            )
        )
    return queries


def check_rollups(*checked: Period) -> None:
    """The roll-ups' figures equal the ledger's own aggregates for each period (the check a
    tiny run makes; at 10 M the ledger's side takes minutes)."""
    from jobs import selectors

    for period in checked:
        days_of = {"first_day": period.first_day, "last_day": period.last_day}
        entries = selectors.ledger_for_period(start=period.start, end=period.end)
        users = {r["user_id"]: r for r in selectors.review_by_user(**days_of)}
        from_ledger = {r["user_id"]: r for r in selectors.spend_by_user(entries)}
        days, models = selectors.review_by_day_and_model(**days_of)
        ledger_days, ledger_models = selectors.spend_by_day_and_model(entries, **days_of)
        by_model = {r["model"]: r for r in models}
        if (users, days, by_model) != (
            from_ledger,
            ledger_days,
            {r["model"]: r for r in ledger_models},
        ):
            raise SystemExit(f"the roll-ups differ from the ledger for {period.name}")
    print(f"roll-ups equal to the ledger for {', '.join(p.name for p in checked)}")


def review_figures_now(period: Period):
    """The review page's figures as it got them from the ledger before the roll-ups (18e1550):
    users grouped by user_id with the names looked up after, days and models from one (day,
    model) grouping."""
    from jobs import selectors

    entries = selectors.ledger_for_period(start=period.start, end=period.end)
    days, models = selectors.spend_by_day_and_model(
        entries, first_day=period.first_day, last_day=period.last_day
    )
    return [*selectors.spend_by_user(entries), *days, *models]


def review_figures_first_version(period: Period):
    """As the first version of the page got them (3ca00c6): three scans of the period, the
    users joined to auth_user before grouping."""
    from django.db.models import F
    from django.db.models.functions import TruncDate

    from jobs import selectors

    entries = selectors.ledger_for_period(start=period.start, end=period.end)
    figures = selectors.SPEND_FIGURES
    return [
        *entries.values("user_id", username=F("user__username"))
        .annotate(**figures)
        .order_by("-total", "username"),
        *entries.values("model").annotate(**figures).order_by("-total", "model"),
        *entries.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(**figures)
        .order_by("day"),
    ]


def export_rows(period: Period, *, in_transaction: bool):
    """The CSV's rows as the view fetches them (selectors.ledger_rows_for_export). Outside a
    transaction Django declares its server-side cursor WITH HOLD, and PostgreSQL computes the
    whole result before the first row; inside one, rows arrive as they are found."""
    from django.db import transaction

    from jobs import selectors

    entries = selectors.ledger_for_period(start=period.start, end=period.end)
    if not in_transaction:
        yield from selectors.ledger_rows_for_export(entries)
        return
    with transaction.atomic():
        yield from selectors.ledger_rows_for_export(entries)


def set_day_model_statistics(present: bool) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP STATISTICS IF EXISTS bench_cost_day_model_stats")
        if present:
            cursor.execute(DAY_MODEL_STATISTICS)
        cursor.execute("ANALYZE jobs_costentry")


DAY_MODEL_STATISTICS = (
    "CREATE STATISTICS bench_cost_day_model_stats"
    " ON ((created_at AT TIME ZONE 'UTC')::date), model FROM jobs_costentry"
)


# --- Output -------------------------------------------------------------------------------------


def print_results(title: str, results: list[Result]) -> None:
    streaming = any(r.first_ms is not None or r.first_row_ms is not None for r in results)
    header = ["what", "period", "median ms", "p95 ms"]
    if streaming:
        header += ["1st byte ms", "1st row ms"]
    header += ["SQL ms", "queries", "runs", "rows"]
    rows = []
    for r in results:
        row = [r.name, r.period, f"{r.median:.0f}", f"{r.p95:.0f}"]
        if streaming:
            row += [
                f"{r.first_ms:.0f}" if r.first_ms is not None else "",
                f"{r.first_row_ms:.0f}" if r.first_row_ms is not None else "",
            ]
        row += [f"{r.sql_ms:.0f}", str(r.queries), str(len(r.runs_ms)), r.note]
        rows.append(row)
    common.print_table(title, header, rows, load=True)


def print_page_queries(measurer: Measurer, results: list[Result]) -> None:
    print("\nEach page's queries (last timed run):")
    for r in results:
        print(f"  {r.name}, {r.period}:")
        for seconds, sql_text in measurer.queries[f"{r.name}, {r.period}"]:
            print(f"    {seconds * 1000:7.1f} ms  {sql_text[:110]}")


# --- Running ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="videostudio_bench")
    parser.add_argument("--reseed", action="store_true", help="drop the bench database first")
    parser.add_argument("--jobs", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each (CSV: 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument(
        "--before", action="store_true", help="also the figures from the ledger (no roll-ups)"
    )
    parser.add_argument("--before-runs", type=int, default=3, help="timed runs of each, --before")
    parser.add_argument("--experiment", action="store_true", help="also time the fixes")
    parser.add_argument("--queries", action="store_true", help="list each page's queries")
    parser.add_argument("--redis-url", help="the cache and sessions (default: REDIS_URL's)")
    common.add_tiny_option(
        parser,
        f"{TINY['jobs']:,} jobs from {TINY['users']} users, seeded again each time, one run of"
        f" each page, its own database ({TINY['database']}) and {TINY['redis_url']}",
    )
    args = common.parse_args(parser, TINY, not_with=("experiment",))

    common.check_database_name(args.database)
    # A runaway query must not hang the bench: it ends on its own.
    common.ensure_database(args.database, reseed=args.reseed, statement_timeout="120s")
    simulator = common.start_simulator({"SIM_LATENCY": "0"})
    env = {
        "DATABASE_URL": f"{common.SERVER_URL}/{args.database}",
        # The simulator answers the reconciliation page's `GET /v1/credits`.
        "IMAGEROUTER_BASE_URL": simulator.url,
        "DJANGO_DEBUG": "false",  # timings as in production; queries are still captured
    }
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    try:
        common.django_setup(env)
        bench(args)
    finally:
        simulator.stop()


def bench(args) -> None:
    from django.db import connection

    common.migrate()
    with connection.cursor() as cursor:
        info = common.seeded_info(cursor)
    if args.tiny or info is None or tuple(info[:3]) != (SEED_VERSION, args.jobs, args.users):
        print(f"seeding {args.users:,} users and {args.jobs:,} jobs into {args.database} ...")
        anchor, seconds = seed(jobs=args.jobs, users=args.users, days=SEEDED_DAYS)
        print(f"seeded in {seconds:.1f} s (load, index rebuild, VACUUM ANALYZE)")
    else:
        anchor = info[3]
        print(
            f"reusing {args.database}: {info[1]:,} jobs seeded {anchor:%Y-%m-%d %H:%M} UTC"
            f" in {info[4]:.1f} s (--reseed to redo)"
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM jobs_costentry")
        print(f"{cursor.fetchone()[0]:,} ledger entries; load average {common.loadavg()}")

    measurer = Measurer(runs=args.runs, warmup=args.warmup)
    month, days, year = periods(anchor)
    if args.tiny:
        check_rollups(month, days, year)
    print(
        f"{args.runs} timed runs after {args.warmup} warm-up runs, wall clock, in-process through"
        " django.test.Client (no network); SQL counted and timed by CaptureQueriesContext"
    )

    team, manager = busiest_team()
    pages = []
    for name, period, url, streams in review_pages(anchor, team):
        # A month of CSV is a third of the ledger: fewer runs keep the bench short.
        runs = min(args.runs, 5) if streams else None
        pages.append(measurer.page(name, period.name, url, streaming=streams, runs=runs))
    if pages:
        print_results(
            "Review pages (GET, staff user; by user, team, model and day; reconciliation calls"
            " the simulator)",
            pages,
        )
        if args.queries:
            print_page_queries(measurer, pages)
    else:
        print("\nThis checkout has no review pages (no costs:review URL).")

    if team is not None:
        from django.test import Client

        from jobs.models import CostEntry

        manager_client = Client(HTTP_HOST="localhost")
        manager_client.force_login(manager)
        in_month = CostEntry.objects.filter(
            team=team, created_at__gte=month.start, created_at__lt=month.end
        ).count()
        busiest_member = (
            CostEntry.objects.filter(team=team, created_at__gte=month.start)
            .values_list("user__username", flat=True)
            .order_by("user_id")
            .first()
        )
        team_results = []
        for name, period, url, streams in team_pages(anchor, team, busiest_member):
            runs = min(args.runs, 5) if streams else None
            team_results.append(
                measurer.page(
                    name, period.name, url, streaming=streams, runs=runs, client=manager_client
                )
            )
        print_results(
            f"A team manager's pages ({team.name}: {in_month:,} entries in {month.name};"
            f" {manager.username}, a manager, not staff)",
            team_results,
        )
        if args.queries:
            print_page_queries(measurer, team_results)

    from jobs.imagerouter import get_client

    provider = [measurer.call("GET /v1/credits (simulator)", "-", lambda: [get_client().credits()])]
    queries = [
        measurer.call(name, period.name, make)
        for period in (month, days, year)
        for name, make in page_queries(period)
    ]
    print_results(
        "Inside those pages: the provider call, and each query on its own", provider + queries
    )

    if args.before:
        before = [
            measurer.call(name, period.name, make, runs=args.before_runs)
            for period in (month, days, year)
            for name, make in ledger_queries(period) + ledger_queries(period, team)
        ]
        print_results(
            f"Before the roll-ups: the review's figures aggregated from the ledger's entries"
            f" (the team's: {team.name if team else '-'})",
            before,
        )

    if args.experiment:
        experiment(measurer, anchor)

    # The plans of the slowest query of the review page and of the reconciliation page.
    for page in ("review", "team review", "reconciliation"):
        seconds, sql_text = measurer.slowest_query(f"{page}, {month.name}")
        if sql_text:
            print(f"\nSlowest query of the {page} page, {month.name} ({seconds * 1000:.0f} ms):")
            print(sql_text)
            print(explain(sql_text))
    print(f"\nload average at the end: {common.loadavg()}")


def experiment(measurer: Measurer, anchor: datetime) -> None:
    """Time the ledger-side fixes in BENCHMARKS.md (what the review did before the roll-ups,
    and the CSV's cursor). Whatever is created here is dropped again."""
    month, days, _year = periods(anchor)
    both = (month, days)
    results = [
        measurer.call(
            "first version: join, 3 scans", p.name, partial(review_figures_first_version, p)
        )
        for p in both
    ]
    # With and without the statistics, taking turns, so a busy neighbour on the machine weighs
    # on both sides alike.
    turns: dict[str, Result] = {}
    try:
        for _turn in range(2):
            for with_statistics in (False, True):
                set_day_model_statistics(with_statistics)
                label = " + day statistics" if with_statistics else ""
                for p in both:
                    result = measurer.call(
                        f"ledger: 2 scans{label}", p.name, partial(review_figures_now, p)
                    )
                    key = f"{result.name}, {result.period}"
                    if key in turns:
                        turns[key].runs_ms += result.runs_ms
                        turns[key].sql_ms = (turns[key].sql_ms + result.sql_ms) / 2
                    else:
                        turns[key] = result
    finally:
        set_day_model_statistics(False)
    results += list(turns.values())
    print_results(
        "Review figures from the ledger: query shapes compared (SQL and row handling)", results
    )

    csv = [
        measurer.call(
            f"CSV rows, {label}",
            month.name,
            partial(export_rows, month, in_transaction=inside),
            runs=3,
            streaming=True,
        )
        for label, inside in (("autocommit (now)", False), ("inside atomic()", True))
    ]
    print_results("The CSV's rows without the csv module: first row and all of them", csv)


if __name__ == "__main__":
    main()
