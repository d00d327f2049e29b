"""How fast are the galleries at size: My videos and Team videos with 100,000 jobs in a team and
1,000,000 in the studio? (Goal, issue 25: a page, a filter and a prompt search each ≤ 100 ms
server time.)

    .venv/bin/python bench/gallery.py              # reuse the seeded database if it is there
    .venv/bin/python bench/gallery.py --reseed     # drop it and seed again (about a minute)
    .venv/bin/python bench/gallery.py --tiny       # the check tests/test_benches.py runs

1. Makes (or reuses) its own PostgreSQL database, `videostudio_bench_gallery` on 127.0.0.1:5432,
   and runs `migrate` on it. It refuses the `videostudio` and `test_*` databases.
2. Seeds 1,000 users in 50 teams (user k in team k mod 50; the team's first user manages it) and
   1,000,000 jobs over the 200 days before the seed: 100,000 charged to the big team (Gallery
   team 01, from its 20 members), 20,000 in one person's personal space (HEAVY_USER), the rest
   from everyone, half personal and half charged to their team. Prompts are drawn from a
   vocabulary of subjects (a few common, most rare), actions, places and styles, as people
   write them ("A misty heron lands on a wooden pier at golden hour"); one job in 2,000 also
   has an axolotl, and no prompt has a zeppelin. Outcomes, stars, expired and deleted videos
   as a studio with RETENTION_DAYS=180 would have them. The rows are made by PostgreSQL itself
   (`INSERT ... SELECT generate_series` through common.insert_select), secondary indexes are
   rebuilt after the load, then `VACUUM ANALYZE`.
3. GETs the galleries in-process through Django's whole stack (`django.test.Client`,
   middleware, session, view, template): My videos as HEAVY_USER, and the big team's Team
   videos as a member and as a manager. Each case (first page, a later page, each filter the
   form offers, a prompt search for a common word, part of a word, a rare word, two words, a
   quoted phrase and a word no prompt has) gets warm-up runs, then `--runs` timed runs, with
   its SQL counted and timed (CaptureQueriesContext); then the same for the #gallery fragment
   alone, which is what a filter, a search or another page costs with htmx. It prints median
   and p95 server time, SQL time and query count per case, the fragment's median and p95, the
   slowest case's queries, and `EXPLAIN (ANALYZE, BUFFERS)` of its slowest query.

It checks as it goes that every page answers 200 and that the rare-word search finds the job
seeded to be found (and the no-hit search nothing), and exits non-zero otherwise.
"""

import argparse
import logging
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import common

SEED_VERSION = 2  # bump when the seeded data changes shape, so old bench databases are redone
# --tiny: the same path end to end in seconds: 5,000 jobs (1,000 in the big team, 400 in the
# heavy user's space) from 100 users, seeded again on every run, one timed run of each case, in
# a database and a Redis database (cache, sessions) of their own.
TINY = {"jobs": 5_000, "users": 100, "team_jobs": 1_000, "heavy_jobs": 400, "runs": 1,
        "warmup": 0, "database": "videostudio_gallery_tiny",
        "redis_url": "redis://127.0.0.1:6379/12"}  # fmt: skip

TEAMS = 50
SEEDED_DAYS = 200
RETENTION_DAYS = 180  # so "Expiring within 7 days" and "Expired" find something
BIG_TEAM = "Gallery team 01"
HEAVY_USER = "gallery-user-0002"  # the big personal gallery (a member of team 02)
MANAGER = "gallery-user-0001"  # the big team's manager
# The first member of the big team after its manager: user k is in team (k - 1) mod 50.
MEMBER = "gallery-user-0051"
FOUND_PROMPT = "A violet axolotl waves from a teacup, bench marker"  # the job the rare search finds
# About one job in GROUPED_EVERY is in a group (a comparison, variations, a batch) of GROUP_SIZE
# jobs by the same person, charged to the same place, as a studio's are: a gallery counts and
# pages a group as one entry, so groups must be there for its figures to mean anything.
GROUPED_EVERY = 10
GROUP_SIZE = 3

# (model, share of jobs)
MODELS = [
    ("kling/kling-2.1-standard", 30),
    ("google/veo-3.1-fast", 25),
    ("minimax/hailuo-2.3", 18),
    ("openai/sora-2", 15),
    ("wan-ai/wan-2.5", 9),
    ("ir/test-video", 3),
]
# The prompt's parts. Subjects are skewed (the first ones are common, the last ones rare), as a
# studio's prompts are; the rest are picked evenly.
ADJECTIVES = ["quiet", "golden", "misty", "neon", "ancient", "tiny", "stormy", "sunlit",
              "frozen", "crowded", "paper", "velvet"]  # fmt: skip
SUBJECTS = ["boat", "city street", "fox", "dancer", "lighthouse", "train", "forest", "robot",
            "waterfall", "heron", "market", "horse", "cyclist", "kite", "castle", "whale",
            "violinist", "glacier", "bakery", "hot-air balloon"]  # fmt: skip
ACTIONS = ["drifts past", "lands on", "runs through", "glows above", "spins around",
           "rests beside", "rises over", "crosses", "circles", "waits near"]  # fmt: skip
PLACES = ["a wooden pier", "the harbour", "a mountain lake", "a rainy avenue", "the old town",
          "a desert road", "a snowy field", "the night market", "a coral reef",
          "a sunflower field", "the rooftops", "a quiet beach"]  # fmt: skip
STYLES = ["at golden hour", "in slow motion", "cinematic, 35mm film", "drone footage",
          "timelapse", "soft morning light", "anime style", "handheld camera"]  # fmt: skip


# --- Seeding ------------------------------------------------------------------------------------


def seed(*, jobs: int, users: int, team_jobs: int, heavy_jobs: int) -> tuple[datetime, float]:
    """Fill the bench database, migrated first, through its schema (common.insert_select).
    Returns the anchor (the end of the seeded period) and the time it took."""
    from django.db import connection, transaction

    anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        common.begin_bulk_seed(cursor)
        cursor.execute(
            "TRUNCATE jobs_costentry, jobs_job, jobs_membership, jobs_team, django_session,"
            " auth_user CASCADE"
        )
        _seed_users_and_teams(cursor, users)
        dropped = common.drop_secondary_indexes(cursor, ["jobs_job"])
        _seed_jobs(cursor, jobs=jobs, team_jobs=team_jobs, heavy_jobs=heavy_jobs, anchor=anchor)
        _seed_groups(cursor)
        for statement in dropped:
            cursor.execute(statement)
        seconds = time.perf_counter() - started
        common.record_seed(
            cursor, version=SEED_VERSION, jobs=jobs, users=users, anchor=anchor, seconds=seconds
        )
    with connection.cursor() as cursor:
        common.vacuum_analyze(cursor, ["auth_user", "jobs_team", "jobs_membership", "jobs_job"])
    return anchor, time.perf_counter() - started


def _seed_users_and_teams(cursor, users):
    """User k (gallery-user-kkkk) is in team (k - 1) mod 50 + 1, its default; the team's first
    user manages it."""
    from django.contrib.auth.models import User

    from jobs.models import Membership, Team

    common.insert_select(
        cursor,
        User,
        {
            "password": "'!'",
            "username": "'gallery-user-' || lpad(n::text, 4, '0')",
            "email": "'gallery-user-' || n || '@example.com'",
            "is_active": "true",
            "date_joined": "now() - interval '300 days'",
        },
        "FROM generate_series(1, %(users)s) AS n",
        {"users": users},
    )
    common.insert_select(
        cursor,
        Team,
        {
            "id": "gen_random_uuid()",
            "name": "'Gallery team ' || lpad(n::text, 2, '0')",
            "created_at": "now() - interval '300 days'",
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
            "role": "CASE WHEN u.n <= %(teams)s THEN 'manager' ELSE 'member' END",
            "is_default": "true",
            "created_at": "now() - interval '300 days'",
        },
        """FROM (SELECT id, row_number() OVER (ORDER BY username) AS n FROM auth_user) AS u
           JOIN (SELECT id, row_number() OVER (ORDER BY name) - 1 AS k FROM jobs_team) AS t
             ON t.k = mod(u.n - 1, %(teams)s)""",
        {"teams": TEAMS},
    )


def _pick(words: list[str], r: str, *, skew: bool = False) -> str:
    """SQL for one of `words`, by the random column `r` (a few common ones first, with skew)."""
    array = "ARRAY[" + ", ".join("'" + w.replace("'", "''") + "'" for w in words) + "]"
    spread = f"power({r}, 2.5)" if skew else r
    return f"({array})[1 + floor({spread} * {len(words)})::int]"


def _seed_jobs(cursor, *, jobs, team_jobs, heavy_jobs, anchor):
    from jobs.models import Job

    # Each model's lower bound on [0, 1), by its share: width_bucket picks one per job.
    total = sum(share for _, share in MODELS)
    starts, cumulative = [], 0
    for _model, share in MODELS:
        starts.append(cumulative / total)
        cumulative += share
    # One staging row per job: who made it, where it is charged, when, its prompt's parts.
    cursor.execute(
        """
        CREATE TEMP TABLE bench_seed ON COMMIT DROP AS
        WITH people AS (
            SELECT array_agg(u.id ORDER BY u.username) AS ids, count(*) AS how_many,
                   array_agg(u.id ORDER BY u.username) FILTER (WHERE t.name = %(big)s) AS big
            FROM auth_user u JOIN jobs_membership m ON m.user_id = u.id
            JOIN jobs_team t ON t.id = m.team_id
        ),
        base AS (
            SELECT n, random() AS r_user, random() AS r_team, random() AS r_model,
                   random() AS r_time, random() AS r_outcome, random() AS r_star,
                   random() AS r_a, random() AS r_s, random() AS r_v, random() AS r_p,
                   random() AS r_y
            FROM generate_series(1, %(jobs)s) AS n
        )
        SELECT b.*, CASE
                   WHEN n <= %(team_jobs)s
                       THEN p.big[1 + floor(b.r_user * array_length(p.big, 1))::int]
                   WHEN n <= %(team_jobs)s + %(heavy_jobs)s
                       THEN (SELECT id FROM auth_user WHERE username = %(heavy)s)
                   ELSE p.ids[1 + floor(b.r_user * p.how_many)::int] END AS owner_id,
               gen_random_uuid() AS job_id,
               (%(models)s::text[])[width_bucket(b.r_model, %(starts)s::float8[])] AS model,
               -- The live jobs, and the marker job (first in its search), are the newest.
               CASE WHEN n = 3 OR (b.r_outcome >= 0.995 AND n <= 3000)
                    THEN %(anchor)s - n * interval '1 second'
                    ELSE %(anchor)s - b.r_time * %(days)s * interval '1 day' END AS created_at,
               CASE WHEN b.r_outcome >= 0.995 AND n <= 3000 THEN 'running'
                    WHEN b.r_outcome < 0.88 OR b.r_outcome >= 0.995 THEN 'succeeded'
                    WHEN b.r_outcome < 0.96 THEN 'failed'
                    ELSE 'canceled' END AS status
        FROM base b CROSS JOIN people p
        """,
        {
            "jobs": jobs,
            "team_jobs": team_jobs,
            "heavy_jobs": heavy_jobs,
            "heavy": HEAVY_USER,
            "big": BIG_TEAM,
            "models": [model for model, _share in MODELS],
            "starts": starts,
            "anchor": anchor,
            "days": SEEDED_DAYS,
        },
    )
    prompt = (
        f"'A ' || {_pick(ADJECTIVES, 'r_a')} || ' ' || {_pick(SUBJECTS, 'r_s', skew=True)}"
        f" || ' ' || {_pick(ACTIONS, 'r_v')} || ' ' || {_pick(PLACES, 'r_p')}"
        f" || ' ' || {_pick(STYLES, 'r_y')}"
        " || CASE WHEN mod(n, 2000) = 7 THEN ', with an axolotl' ELSE '' END"
    )
    # A video past retention expired, unless it was starred.
    expired = (
        f"status = 'succeeded' AND r_star >= 0.02"
        f" AND created_at < %(anchor)s - interval '{RETENTION_DAYS} days'"
    )
    common.insert_select(
        cursor,
        Job,
        {
            "id": "job_id",
            "owner_id": "owner_id",
            "team_id": """CASE WHEN n <= %(team_jobs)s THEN m.team_id
                 WHEN n <= %(team_jobs)s + %(heavy_jobs)s THEN NULL
                 WHEN r_team < 0.5 AND m.team_id <> %(big_id)s::uuid THEN m.team_id END""",
            # The marker job: the one the rare search must find, in the big team.
            "prompt": f"CASE WHEN n = 3 THEN %(found)s ELSE {prompt} END",
            "model": "model",
            "size": "'1280x720'",
            "seconds": "'5'",
            "response_format": "'url'",
            "status": "status",
            "attempt": "1",
            "error": "CASE status WHEN 'failed' THEN 'The provider refused the request.'"
            " ELSE '' END",
            "cost": "CASE status WHEN 'succeeded' THEN 0.4 ELSE 0 END",
            "latency_ms": "CASE status WHEN 'succeeded' THEN 60000 END",
            "video": f"""CASE WHEN status = 'succeeded' AND NOT ({expired})
                 THEN 'videos/bench/' || n || '.mp4' ELSE '' END""",
            "poster": f"""CASE WHEN status = 'succeeded' AND NOT ({expired})
                 THEN 'posters/bench/' || n || '.jpg' ELSE '' END""",
            "stored_bytes": f"CASE WHEN status = 'succeeded' AND NOT ({expired})"
            " THEN 4000000 + mod(n, 1000000) ELSE 0 END",
            "created_at": "created_at",
            "enqueued_at": "created_at",
            "started_at": "created_at + interval '1 second'",
            "finished_at": "CASE WHEN status = 'running' THEN NULL"
            " ELSE created_at + interval '1 minute' END",
            "starred_at": "CASE WHEN r_star < 0.02 AND status = 'succeeded'"
            " THEN created_at + interval '1 hour' END",
            "expired_at": f"CASE WHEN {expired}"
            f" THEN created_at + interval '{RETENTION_DAYS} days' END",
            "deleted_at": "CASE WHEN mod(n, 50) = 11 THEN created_at + interval '1 hour' END",
        },
        "FROM bench_seed s LEFT JOIN (SELECT user_id AS member_id, team_id FROM jobs_membership)"
        " AS m ON m.member_id = s.owner_id",
        {
            "team_jobs": team_jobs,
            "heavy_jobs": heavy_jobs,
            "found": FOUND_PROMPT,
            "anchor": anchor,
            "big_id": str(_team_id(cursor, BIG_TEAM)),
        },
    )


def _seed_groups(cursor):
    """Put about one job in GROUPED_EVERY into groups of GROUP_SIZE: among each person's picked
    jobs in one place (a team, or their own space), by age, every GROUP_SIZE in a row make a
    group, with positions 0, 1, 2 as services.groups numbers them."""
    from jobs.models import JobGroup

    cursor.execute(
        """
        CREATE TEMP TABLE bench_grouped ON COMMIT DROP AS
        SELECT id AS job_id, owner_id, team_id, created_at,
               (row_number() OVER (PARTITION BY owner_id, team_id ORDER BY created_at) - 1)
                   AS k
        FROM jobs_job
        WHERE mod(abs(hashtext(id::text)), %(every)s) = 0
        """,
        {"every": GROUPED_EVERY},
    )
    cursor.execute(
        """
        CREATE TEMP TABLE bench_groups ON COMMIT DROP AS
        SELECT gen_random_uuid() AS group_id, owner_id, team_id, k / %(size)s AS g,
               min(created_at) AS created_at
        FROM bench_grouped GROUP BY owner_id, team_id, k / %(size)s
        HAVING count(*) > 1
        """,
        {"size": GROUP_SIZE},
    )
    kinds = (
        "(ARRAY['comparison', 'variations', 'batch'])[1 + mod(abs(hashtext(group_id::text)), 3)]"
    )
    common.insert_select(
        cursor,
        JobGroup,
        {
            "id": "group_id",
            "kind": kinds,
            "owner_id": "owner_id",
            "team_id": "team_id",
            "created_at": "created_at",
        },
        "FROM bench_groups",
        {},
    )
    cursor.execute(
        """
        UPDATE jobs_job j SET group_id = b.group_id, group_position = g.k %% %(size)s
        FROM bench_grouped g
        JOIN bench_groups b ON b.owner_id = g.owner_id
            AND b.team_id IS NOT DISTINCT FROM g.team_id AND b.g = g.k / %(size)s
        WHERE j.id = g.job_id
        """,
        {"size": GROUP_SIZE},
    )


def _team_id(cursor, name):
    cursor.execute("SELECT id FROM jobs_team WHERE name = %s", [name])
    return cursor.fetchone()[0]


# --- Measuring ----------------------------------------------------------------------------------


@dataclass
class Result:
    space: str
    case: str
    runs_ms: list[float]  # the whole page
    fragment_ms: list[float]  # the #gallery fragment alone, as htmx asks for it
    queries: int
    sql_ms: float  # median time spent in SQL (the whole page), as Django's cursor wrapper saw it
    shown: str  # what the page says it shows ("1-24 of 19603 videos")

    @property
    def median(self) -> float:
        return statistics.median(self.runs_ms)

    @property
    def p95(self) -> float:
        return common.percentile(self.runs_ms, 0.95)


class Measurer:
    """GETs a gallery `warmup` times untimed, then `runs` times timed (wall clock,
    time.perf_counter), counting and timing its SQL with CaptureQueriesContext: the whole page
    (a first visit, or any view without JavaScript), then its #gallery fragment alone (what a
    filter, a search or another page costs with htmx: no storage, expiry or spending figures)."""

    def __init__(self, *, runs: int, warmup: int):
        self.runs = runs
        self.warmup = warmup
        self.queries: dict[str, list[tuple[float, str]]] = {}  # case: its last timed run's SQL
        self.failures: list[str] = []

    def page(self, client, space: str, case: str, url: str) -> tuple[Result, str]:
        totals, sql_times, body, queries = self._get(client, space, case, url, {})
        fragments, _sql, _body, _queries = self._get(
            client, space, case, url, {"HTTP_HX_REQUEST": "true"}
        )
        result = Result(
            space,
            case,
            totals or [0.0],
            fragments or [0.0],
            queries,
            statistics.median(sql_times) if sql_times else 0.0,
            shown(body),
        )
        return result, body

    def _get(self, client, space, case, url, headers):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        totals, sql_times = [], []
        body = ""
        for run in range(self.warmup + self.runs):
            # CaptureQueriesContext reads Django's log of at most 9,000 queries: past that, it
            # would capture nothing.
            connection.queries_log.clear()
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url, **headers)
                elapsed = time.perf_counter() - started
            if response.status_code != 200:
                self.failures.append(f"GET {url} ({space}, {case}) answered {response.status_code}")
                break
            body = response.content.decode()
            if run < self.warmup:
                continue
            totals.append(elapsed * 1000)
            sql_times.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
            if not headers:
                self.queries[f"{space}: {case}"] = [
                    (float(q["time"]), q["sql"]) for q in captured.captured_queries
                ]
        return totals, sql_times, body, len(captured)


def shown(body: str) -> str:
    """The gallery's own summary of what it shows, or "none" for an empty result."""
    import re

    match = re.search(
        r"(?:[\d,]+–[\d,]+ of )?(?:more than )?[\d,]+ videos?(?= matching|\s*</p>|\s*$)", body
    )
    if match:
        return match.group(0)
    return "none" if "gallery-grid" not in body else "?"


def cases(models: list[str]) -> list[tuple[str, dict]]:
    """(case, query string) for each view of a gallery the bench times."""
    rare_model = MODELS[-1][0] if MODELS[-1][0] in models else models[-1]
    return [
        ("first page", {}),
        ("page 40", {"page": 40}),
        ("status: failed", {"status": "failed"}),
        ("status: running (rare)", {"status": "running"}),
        ("model: busiest", {"model": MODELS[0][0]}),
        (f"model: {rare_model} (rare)", {"model": rare_model}),
        ("keeping: starred", {"keep": "starred"}),
        ("keeping: expiring in 7 days", {"keep": "expiring"}),
        ("keeping: expired", {"keep": "expired"}),
        ("search: boat (common word)", {"q": "boat"}),
        ("search: boa (part of a word)", {"q": "boa"}),
        ("search: axolotl (rare word)", {"q": "axolotl"}),
        ("search: heron pier (two words)", {"q": "heron pier"}),
        ('search: "golden hour" (phrase)', {"q": '"golden hour"'}),
        ("search: zeppelin (no hit)", {"q": "zeppelin"}),
        ("search: boat + status failed", {"q": "boat", "status": "failed"}),
        ("search: boat, page 10", {"q": "boat", "page": 10}),
    ]


def explain(sql_text: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql_text)
        return "\n".join(row[0] for row in cursor.fetchall())


def print_results(title: str, results: list[Result]) -> None:
    header = ["case", "median ms", "p95 ms", "SQL ms", "queries", "htmx median", "htmx p95"]
    header += ["runs", "shows"]
    rows = [
        [
            r.case,
            f"{r.median:.0f}",
            f"{r.p95:.0f}",
            f"{r.sql_ms:.0f}",
            str(r.queries),
            f"{statistics.median(r.fragment_ms):.0f}",
            f"{common.percentile(r.fragment_ms, 0.95):.0f}",
            str(len(r.runs_ms)),
            r.shown,
        ]
        for r in results
    ]
    common.print_table(title, header, rows, load=True)


# --- Running ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="videostudio_bench_gallery")
    parser.add_argument("--reseed", action="store_true", help="drop the bench database first")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--team-jobs", type=int, default=100_000, help="jobs in the big team")
    parser.add_argument("--heavy-jobs", type=int, default=20_000, help=f"{HEAVY_USER}'s own")
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each case")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--queries", action="store_true", help="list every case's queries")
    parser.add_argument("--redis-url", help="the cache and sessions (default: REDIS_URL's)")
    common.add_tiny_option(
        parser,
        f"{TINY['jobs']:,} jobs from {TINY['users']} users, seeded again each time, one run of"
        f" each case, its own database ({TINY['database']}) and {TINY['redis_url']}",
    )
    args = common.parse_args(parser, TINY, not_with=("reseed",))

    common.check_database_name(args.database)
    # A runaway query must not hang the bench: it ends on its own.
    common.ensure_database(args.database, reseed=args.reseed, statement_timeout="120s")
    env = {
        "DATABASE_URL": f"{common.SERVER_URL}/{args.database}",
        "DJANGO_DEBUG": "false",  # timings as in production; queries are still captured
        "RETENTION_DAYS": str(RETENTION_DAYS),
    }
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    common.django_setup(env)
    raise SystemExit(bench(args))


def bench(args) -> int:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from jobs import selectors
    from jobs.models import Job, Team

    common.migrate()
    with connection.cursor() as cursor:
        info = common.seeded_info(cursor)
    if args.tiny or info is None or tuple(info[:3]) != (SEED_VERSION, args.jobs, args.users):
        print(f"seeding {args.users:,} users and {args.jobs:,} jobs into {args.database} ...")
        anchor, seconds = seed(
            jobs=args.jobs, users=args.users, team_jobs=args.team_jobs, heavy_jobs=args.heavy_jobs
        )
        print(f"seeded in {seconds:.1f} s (load, index rebuild, VACUUM ANALYZE)")
    else:
        anchor = info[3]
        print(
            f"reusing {args.database}: {info[1]:,} jobs seeded {anchor:%Y-%m-%d %H:%M} UTC"
            f" in {info[4]:.1f} s (--reseed to redo)"
        )
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        jit = cursor.fetchone()[0]
    team = Team.objects.get(name=BIG_TEAM)
    heavy = User.objects.get(username=HEAVY_USER)
    print(
        f"{Job.objects.count():,} jobs in the studio, {Job.objects.filter(team=team).count():,}"
        f" in {BIG_TEAM}, {Job.objects.filter(owner=heavy, team=None).count():,} in"
        f" {HEAVY_USER}'s personal space; PostgreSQL's jit {jit} for the studio's connections;"
        f" load average {common.loadavg()}"
    )
    print(
        f"{args.runs} timed runs after {args.warmup} warm-up runs of each case, wall clock,"
        " in-process through django.test.Client (no network); the whole page, as a first visit"
        " gets it; SQL counted and timed by CaptureQueriesContext"
    )

    # Each log-in's line would bury the tables.
    logging.getLogger("axes").setLevel(logging.WARNING)
    measurer = Measurer(runs=args.runs, warmup=args.warmup)
    # A loopback host passes ALLOWED_HOSTS without setup_test_environment(), whose template
    # instrumentation would slow rendering down and skew the figures.
    spaces = []
    for label, username, url in (
        (f"My videos ({HEAVY_USER})", HEAVY_USER, reverse("jobs:list")),
        (f"Team videos, {BIG_TEAM}, as a member", MEMBER, reverse("teams:videos", args=[team.pk])),
        (
            f"Team videos, {BIG_TEAM}, as a manager",
            MANAGER,
            reverse("teams:videos", args=[team.pk]),
        ),
    ):
        client = Client(HTTP_HOST="localhost")
        user = User.objects.get(username=username)
        client.force_login(user)
        space = selectors.Space(user=user, team=None if url == reverse("jobs:list") else team)
        spaces.append((label, client, url, selectors.job_models(space=space)))

    found = Job.objects.get(prompt=FOUND_PROMPT)
    all_results = []
    for label, client, url, models in spaces:
        results = []
        for case, query in cases(models):
            result, body = measurer.page(client, label, case, f"{url}?{urlencode(query)}")
            results.append(result)
            if query.get("q") == "zeppelin" and "gallery-grid" in body:
                measurer.failures.append(f"{label}: the search for zeppelin found something")
            if query.get("q") == "axolotl" and "Team" in label and str(found.pk) not in body:
                measurer.failures.append(f"{label}: the search for axolotl missed {found.pk}")
        print_results(label, results)
        all_results += results

    slowest = max(all_results, key=lambda r: r.median)
    where = f"{slowest.space}: {slowest.case}"
    queries = measurer.queries.get(where, [])
    if args.queries:
        for key, listed in measurer.queries.items():
            print(f"\n{key}:")
            for seconds, sql_text in listed:
                print(f"  {seconds * 1000:7.1f} ms  {sql_text[:140]}")
    else:
        print(f"\nThe slowest case's queries ({where}, last timed run):")
        for seconds, sql_text in queries:
            print(f"  {seconds * 1000:7.1f} ms  {sql_text[:140]}")
    if queries:
        seconds, sql_text = max(queries)
        print(f"\nIts slowest query ({seconds * 1000:.0f} ms):\n{sql_text}")
        print(explain(sql_text))

    print(f"\nload average at the end: {common.loadavg()}; {common.cpu_model()}")
    if measurer.failures:
        print("\nFAILED:\n  " + "\n  ".join(measurer.failures))
        return 1
    print("every page answered 200; the rare search found its job, the no-hit search nothing")
    return 0


if __name__ == "__main__":
    main()
