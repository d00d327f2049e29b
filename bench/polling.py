"""How many status polls a second the studio answers, and how fast, with 1,000 people watching
their jobs. Issue 9's goal: the status fragment at 0.6 times a bare view's throughput or more,
and a p99 of 100 ms or less at 500 polls a second (1,000 pages polling every 2 s).

    .venv/bin/python bench/polling.py              # about 25 minutes
    .venv/bin/python bench/polling.py --quick      # the docs' server setting only: about 3 min
    .venv/bin/python bench/polling.py --reseed     # seed the bench database again first
    .venv/bin/python bench/polling.py --servers sync:3,gthread:2x4 --rounds 5

1. Data. A database of its own, `videostudio_polling` on 127.0.0.1:5432 (made and migrated on
   the first run, reused after), with 1,000 users who each watch one live job (500 running,
   500 queued), 200,000 older finished jobs around them, and recent successes for the typical
   wait. The watchers are in teams of two, and each running job is charged to its owner's
   team, so the team's other member watches it too: the poll of a team job by a member who is
   not its owner, whose permission is their current membership (issue 25). Every server start makes fresh sessions for the 1,000, server-side (SessionStore, as a
   log-in does), and reads each one's status poll URL off its job page, rendered in-process
   (the version, the poll pass and the typical wait, exactly as htmx will ask); the cookies
   and that URL go to the load tool. Redis database 8 holds
   the cache and the cached sessions; the bench empties it first.
2. Server. The production server as the docs run it: `gunicorn videostudio.wsgi` on loopback,
   DEBUG off, with DJANGO_SETTINGS_MODULE=bench.polling_settings: the studio's settings, plus
   two bare views (bench/urls.py) on the same server and middleware, as the ceiling. Several
   worker settings are measured: sync and gthread, 2 to 5 processes on 2 cores.
3. Top speed: `wrk -t2 -c64`, another process on loopback, with a Lua script that this file
   writes to a temporary folder. Each request is one of the 1,000 watchers' polls, with that
   watcher's session and CSRF cookies and job URL, in rotation. Cases: the bare view, the bare
   view behind login_required, the status poll with the page's own URL (204: unchanged), the
   same for a teammate's team job (204, 500 watchers), the status poll without a version
   (rendered, 200), and the queue-place poll (every 10 s per queued page). The machine is shared, so the cases take turns for --rounds rounds of --seconds each
   (after a 1-s warm-up) and the best round of each is reported, with the range of all rounds.
4. At 500 polls/s: wrk cannot hold a rate (that is wrk2, not packaged), and its delay() waits
   on an open connection, which ties up a sync worker as a slow client would. So this file
   drives that part itself, in another process (`--drive`, asyncio, no dependencies): 1,000
   watchers, each polling every 2 s from its own random start, like htmx's `every 2s`. A poll
   is sent at its time whether or not earlier ones have been answered (an open loop), and its
   latency runs from the time it was due, so a slow server cannot hide its queue. Each case
   runs --rate-rounds times, taking turns, and the round with the lowest p99 is reported with
   the others' p99 beside it. This part runs on the setting with the most 204s a second, and on
   the docs' setting.
5. Every request asks for `Connection: close`, so each is a new connection, as nginx's
   proxy_pass sends them upstream by default (the README puts a proxy in front);
   --keep-alive reuses connections instead (top speed only).
6. Counts. Per case: the SQL queries of one request (in-process, django.test.Client), the CPU
   time per request of gunicorn's processes, of the bench database's PostgreSQL backends and of
   the load tool (from /proc), and the status codes seen, so a table cannot quietly measure
   404s. "Others" is the CPU that everything else on the machine used meanwhile.
"""

import argparse
import asyncio
import http.client
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import common
import psycopg

DATABASE = "videostudio_polling"
REDIS_URL = "redis://127.0.0.1:6379/8"
SEED_VERSION = 2  # 2: watchers in teams of two, each team job polled by the other member
WATCHERS = 1_000
OLD_JOBS = 200_000
# --tiny: the same path end to end in seconds: 20 watchers, 2,000 older jobs seeded again each
# run, one gunicorn setting, one short round of each case (wrk's part taken by a small Python
# client when wrk is not installed), in a database and Redis database of its own.
TINY = {"database": "videostudio_polling_tiny", "redis_url": "redis://127.0.0.1:6379/3",
        "watchers": 20, "old_jobs": 2_000}  # fmt: skip
TINY_ARGS = {"servers": "gthread:1x4", "rounds": 1, "seconds": 1, "rate_seconds": 1,
             "rate_rounds": 1, "engines": "none"}  # fmt: skip
TINY_REQUESTS = 20  # per case and round, for the Python client
PASSWORD = "bench-watcher-password"  # noqa: S105 - bench users on a bench database
MODEL = "ir/test-video"
POLL_SECONDS = 2.0  # htmx's `every 2s`
QUEUE_POLL_SECONDS = 10.0  # the queue place's own poll

SESSION_ENGINES = {
    "db": "django.contrib.sessions.backends.db",
    "cached_db": "django.contrib.sessions.backends.cached_db",
    "cache": "django.contrib.sessions.backends.cache",
    "signed_cookies": "django.contrib.sessions.backends.signed_cookies",
}


@dataclass(frozen=True)
class Server:
    """One gunicorn setting: `threads` 1 is the sync worker, more is gthread."""

    workers: int
    threads: int = 1

    @property
    def name(self) -> str:
        if self.threads == 1:
            return f"sync, {self.workers} workers"
        return f"gthread, {self.workers} workers x {self.threads} threads"

    @property
    def flags(self) -> str:
        if self.threads == 1:
            return f"--workers {self.workers}"
        return f"--workers {self.workers} --threads {self.threads}"

    @classmethod
    def parse(cls, text: str) -> "Server":
        kind, _, size = text.partition(":")
        if kind == "sync":
            return cls(int(size))
        workers, _, threads = size.partition("x")
        return cls(int(workers), int(threads))


# The docs' command line (Dockerfile, docker-compose.yml) comes first: gthread, 2 workers of 4
# threads. The others are what a 2-core host would choose from.
SERVERS = ["gthread:2x4", "gthread:3x4", "gthread:4x2", "sync:2", "sync:3", "sync:4", "sync:5"]


@dataclass(frozen=True)
class Case:
    key: str  # the Lua script's and the driver's mode
    name: str


BARE = Case("bare", "bare view (ceiling)")
SIGNED_IN = Case("signed-in", "bare view + login_required")
FRESH = Case("fresh", "status poll, version current: 204")
TEAM = Case("team", "same, a teammate's team job: 204")
STALE = Case("stale", "status poll, no version: 200")
QUEUE = Case("queue", "queue-place poll: 200")
MIX = Case("mix", "status polls + queue-place polls")
CASES = [BARE, SIGNED_IN, FRESH, TEAM, STALE, QUEUE]
CASES_BY_KEY = {case.key: case for case in [*CASES, MIX]}


# --- The database and the watchers ---------------------------------------------------------------


def server_env(session_engine: str) -> dict[str, str]:
    """The environment of the bench process and of gunicorn alike."""
    env = {k: v for k, v in os.environ.items() if k != "IMAGEROUTER_API_KEY"}
    env.update(
        DATABASE_URL=f"{common.SERVER_URL}/{DATABASE}",
        REDIS_URL=REDIS_URL,
        DJANGO_SETTINGS_MODULE="bench.polling_settings",
        DJANGO_DEBUG="false",
        BENCH_SESSION_ENGINE=session_engine,
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(common.REPO_ROOT),
    )
    return env


def seed(*, again: bool = False) -> None:
    """1,000 watchers with one live job each, 200,000 older jobs, and a wait history; skipped
    when the database already holds this seed, unless `again`. The older jobs go through the
    migrated schema: columns the seed does not name get their defaults (common.insert_select)."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.db import connection
    from django.utils import timezone

    from jobs.models import Job, Membership, Team

    common.migrate()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_seed_info (version int)")
        cursor.execute("SELECT version FROM bench_seed_info")
        row = cursor.fetchone()
        if not again and row and row[0] == SEED_VERSION:
            return
        print("Seeding the bench database…", flush=True)
        started = time.monotonic()
        cursor.execute("TRUNCATE jobs_job, jobs_team, auth_user CASCADE")
        password = make_password(PASSWORD)  # hashed once: a million PBKDF2 rounds each is slow
        users = User.objects.bulk_create(
            User(username=f"watcher-{n:04d}", password=password) for n in range(1, WATCHERS + 1)
        )
        history = User.objects.create(username="history", password="!")  # noqa: S106 - no log-in
        now = timezone.now()
        live = []
        for n, user in enumerate(users):
            if n % 2:
                live.append(
                    Job(
                        owner=user,
                        prompt=f"watcher {n}: a paper boat drifting down a rainy street",
                        model=MODEL,
                        status=Job.Status.RUNNING,
                        attempt=1,
                        started_at=now,
                        enqueued_at=now,
                    )
                )
            else:
                live.append(
                    Job(
                        owner=user,
                        prompt=f"watcher {n}: a lighthouse in a storm",
                        model=MODEL,
                        enqueued_at=now,
                    )
                )
        # Watchers in teams of two (the first and second, the third and fourth, ...); the
        # second one's job, running, is charged to their team, so the first, a member who is
        # not its owner, can watch it too (the TEAM case: visibility by current membership).
        teams = Team.objects.bulk_create(
            Team(name=f"Watchers {n // 2:04d}") for n in range(0, len(users), 2)
        )
        Membership.objects.bulk_create(
            Membership(team=teams[n // 2], user=user) for n, user in enumerate(users)
        )
        for n, job in enumerate(live):
            if n % 2:
                job.team = teams[n // 2]
        Job.objects.bulk_create(live)
        # Older, finished jobs (the table a real studio's PK index walks), the last 50 of which,
        # on the watchers' model, are the typical wait's history.
        common.insert_select(
            cursor,
            Job,
            {
                "id": "gen_random_uuid()",
                "owner_id": "%(owner)s",
                "prompt": "'an older video ' || n",
                "model": "%(model)s",
                "seconds": "'5'",
                "status": "'succeeded'",
                "attempt": "1",
                "cost": "0",
                "latency_ms": "40000",
                "created_at": "%(now)s - n * interval '30 seconds' - interval '90 seconds'",
                "started_at": "%(now)s - n * interval '30 seconds' - interval '70 seconds'",
                "finished_at": "%(now)s - n * interval '30 seconds'",
            },
            "FROM generate_series(1, %(jobs)s) AS n",
            {"owner": history.pk, "model": MODEL, "now": now, "jobs": OLD_JOBS},
        )
        # The queue's order: watcher 0's job first, every 2 s of created_at apart.
        cursor.execute(
            "UPDATE jobs_job SET created_at = %s - (10000 - owner_id) * interval '2 seconds'"
            " WHERE owner_id <> %s",
            [now, history.pk],
        )
        cursor.execute("VACUUM ANALYZE jobs_job")
        cursor.execute("VACUUM ANALYZE auth_user")
        cursor.execute("DELETE FROM bench_seed_info")
        cursor.execute("INSERT INTO bench_seed_info VALUES (%s)", [SEED_VERSION])
        print(f"  seeded in {time.monotonic() - started:.1f} s", flush=True)


@dataclass
class Watcher:
    job_id: str
    state: str
    poll: str  # the status poll's URL as the job page gives it: version, poll pass, typical wait
    cookies: dict[str, str] = field(default_factory=dict)
    # The status poll's URL of the teammate's team job, as its page gives it to this watcher
    # ("-": the teammate's job is personal, so this watcher has none).
    team_poll: str = "-"

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())


def watchers_with_sessions(engine: str) -> list[Watcher]:
    """Each watcher's job, a new session in `engine`, and the status poll's URL that the job
    page gives that session (read off the page itself, rendered in-process)."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.middleware.csrf import _get_new_csrf_string
    from django.test import override_settings

    from jobs.models import Job

    store = import_module(SESSION_ENGINES[engine]).SessionStore
    watchers = []
    jobs = Job.objects.filter(owner__username__startswith="watcher-").select_related("owner")
    with override_settings(SESSION_ENGINE=SESSION_ENGINES[engine], ALLOWED_HOSTS=["*"]):
        for job in jobs.order_by("owner_id"):
            session = store()
            session[SESSION_KEY] = str(job.owner.pk)
            session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            session[HASH_SESSION_KEY] = job.owner.get_session_auth_hash()
            session.save()
            watcher = Watcher(str(job.pk), job.status, poll="")
            watcher.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
            watcher.cookies[settings.CSRF_COOKIE_NAME] = _get_new_csrf_string()
            watcher.poll = page_poll_url(watcher)
            watchers.append(watcher)
        for n in range(0, len(watchers) - 1, 2):  # the first of each team watches the second's
            first, second = watchers[n], watchers[n + 1]
            if second.state == "running":
                first.team_poll = page_poll_url(first, job_id=second.job_id)
    return watchers


def page_poll_url(watcher: Watcher, job_id: str | None = None) -> str:
    """The hx-get of the job page's status fragment, for this watcher's session: of their own
    job, or of `job_id` (a teammate's)."""
    from django.test import Client

    client = Client()
    for name, value in watcher.cookies.items():
        client.cookies[name] = value
    job_id = job_id or watcher.job_id
    page = client.get(f"/jobs/{job_id}/")
    found = re.search(r'id="job-status"[^>]*hx-get="([^"]+)"', page.content.decode())
    if page.status_code != 200 or not found:
        sys.exit(f"The job page of {job_id} gave {page.status_code} and no status poll.")
    return found.group(1).replace("&amp;", "&")


def reset_sessions() -> None:
    import redis
    from django.contrib.sessions.models import Session

    redis.Redis.from_url(REDIS_URL).flushdb()
    Session.objects.all().delete()


def write_watchers(path: Path, watchers: list[Watcher]) -> None:
    with path.open("w") as out:
        for w in watchers:
            out.write(f"{w.job_id}\t{w.state}\t{w.poll}\t{w.team_poll}\t{w.cookie_header}\n")


def case_path(case: Case, watcher: Watcher) -> str:
    """The URL the Lua script asks for in `case`, for one watcher (the same rules)."""
    status = f"/jobs/{watcher.job_id}/status/"
    if case is BARE:
        return "/bench/bare/"
    if case is SIGNED_IN:
        return "/bench/signed-in/"
    if case in (FRESH, MIX):
        return watcher.poll
    if case is TEAM:
        return watcher.team_poll
    if case is STALE:
        return status
    return f"/jobs/{watcher.job_id}/?part=queue"


def queries_per_request(case: Case, engine: str, watchers: list[Watcher]) -> str:
    """The SQL queries one request of `case` costs, in-process, for a running and a queued job:
    "1 / 1" (the queue place: queued jobs only)."""
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    counts = []
    with override_settings(SESSION_ENGINE=SESSION_ENGINES[engine], ALLOWED_HOSTS=["*"]):
        for state in ("running", "queued"):
            if (case is QUEUE and state == "running") or (case is TEAM and state == "queued"):
                continue
            if case is TEAM:  # the poll of a teammate's running team job
                watcher = next(w for w in watchers if w.team_poll != "-")
            else:
                watcher = next(w for w in watchers if w.state == state)
            client = Client()
            for name, value in watcher.cookies.items():
                client.cookies[name] = value
            path = case_path(case, watcher)
            client.get(path)  # the first request of a process warms its caches
            with CaptureQueriesContext(connection) as captured:
                client.get(path)
            counts.append(str(len(captured)))
    if case in (BARE, SIGNED_IN, TEAM):
        return counts[0]
    return " / ".join(counts)


# --- The server ----------------------------------------------------------------------------------


class Gunicorn:
    """`gunicorn videostudio.wsgi --bind ... <flags>`, in a process group of its own."""

    def __init__(self, server: Server, engine: str, workdir: Path):
        self.port = common.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (workdir / "gunicorn.log").open("ab")
        command = [str(Path(sys.executable).parent / "gunicorn"), "videostudio.wsgi"]
        command += ["--bind", f"127.0.0.1:{self.port}", *server.flags.split()]
        self.process = subprocess.Popen(
            command,
            cwd=common.REPO_ROOT,
            env=server_env(SESSION_ENGINES[engine]),
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"gunicorn exited ({self.process.returncode}); see its log")
            try:
                with urllib.request.urlopen(self.url + "/bench/bare/", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.stop()
        sys.exit("gunicorn did not answer within 30 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # its own group: the master and workers
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


class CpuMeter:
    """CPU seconds used between start() and stop(): by gunicorn's process group, by this
    database's PostgreSQL backends, by the load tool (this process's finished children), and
    by the whole machine."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, gunicorn_pgid: int):
        self.pgid = gunicorn_pgid

    def _sample(self):
        gunicorn, postgres = {}, {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    comm_end = (stat := f.read()).rindex(")")
                fields = stat[comm_end + 2 :].split()
                ticks = int(fields[11]) + int(fields[12])
                if int(fields[2]) == self.pgid:
                    gunicorn[pid] = ticks
                elif stat[stat.index("(") + 1 : comm_end] == "postgres":
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if DATABASE.encode() in f.read():
                            postgres[pid] = ticks
            except (OSError, ValueError):
                continue  # gone meanwhile
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        with open("/proc/stat") as f:
            machine = [int(x) for x in f.readline().split()[1:]]
        busy = sum(machine) - machine[3] - machine[4]  # all but idle and iowait
        return {
            "gunicorn": gunicorn,
            "postgres": postgres,
            "load tool": children.ru_utime + children.ru_stime,
            "machine": busy / self.TICK,
        }

    def start(self) -> None:
        self.before = self._sample()

    def stop(self) -> dict[str, float]:
        after, before = self._sample(), self.before
        used = {k: after[k] - before[k] for k in ("load tool", "machine")}
        for who in ("gunicorn", "postgres"):
            # Per process: one that ended meanwhile is lost (a closed connection's backend).
            ticks = sum(t - before[who].get(pid, 0) for pid, t in after[who].items())
            used[who] = ticks / self.TICK
        used["others"] = max(0.0, used["machine"] - used["gunicorn"] - used["postgres"])
        used["others"] -= min(used["others"], used["load tool"])
        return used


# --- Top speed: wrk -----------------------------------------------------------------------------

LUA = r"""
-- One watcher per request, in rotation: its cookies, its job, the poll URL its page holds.
local mode = os.getenv("POLL_MODE")
local close = os.getenv("POLL_CLOSE") == "1"
local watchers, queued, mates = {}, {}, {}
for line in io.lines(os.getenv("POLL_WATCHERS")) do
  local id, state, poll, team_poll, cookie = line:match("^(%S+)\t(%S+)\t(%S+)\t(%S+)\t(.+)$")
  local w = {id = id, poll = poll, team_poll = team_poll, cookie = cookie}
  watchers[#watchers + 1] = w
  if state == "queued" then queued[#queued + 1] = w end
  if team_poll ~= "-" then mates[#mates + 1] = w end
end
math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
local index = math.random(#watchers)
c200, c204, c286, cother = 0, 0, 0, 0

function request()
  index = index % #watchers + 1
  local w = watchers[index]
  local path
  if mode == "bare" then path = "/bench/bare/"
  elseif mode == "signed-in" then path = "/bench/signed-in/"
  elseif mode == "stale" then path = "/jobs/" .. w.id .. "/status/"
  elseif mode == "queue" then
    w = queued[index % #queued + 1]
    path = "/jobs/" .. w.id .. "/?part=queue"
  elseif mode == "team" then
    w = mates[index % #mates + 1]
    path = w.team_poll
  else
    path = w.poll
  end
  local headers = {["Cookie"] = w.cookie, ["HX-Request"] = "true"}
  if close then headers["Connection"] = "close" end
  return wrk.format("GET", path, headers)
end

function response(status, headers, body)
  if status == 200 then c200 = c200 + 1
  elseif status == 204 then c204 = c204 + 1
  elseif status == 286 then c286 = c286 + 1
  else cother = cother + 1 end
end

local threads = {}
function setup(thread) threads[#threads + 1] = thread end

function done(summary, latency, requests)
  local c = {c200 = 0, c204 = 0, c286 = 0, cother = 0}
  for _, t in ipairs(threads) do
    for k, _ in pairs(c) do c[k] = c[k] + (t:get(k) or 0) end
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d errors=%d c200=%d c204=%d c286=%d cother=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.timeout + e.status, c.c200, c.c204, c.c286,
    c.cother))
end
"""


@dataclass
class Run:
    """One measured run of one case."""

    case: Case
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    statuses: dict[str, int]
    cpu: dict[str, float]
    offered: float = 0.0  # requests/s asked for (the fixed-rate driver only)
    lag_p99_ms: float = 0.0  # how late the driver sent its 99th-percentile request

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def cpu_us(self, who: str) -> str:
        return f"{self.cpu[who] / max(1, self.requests) * 1e6:,.0f}"

    def others(self) -> str:
        return f"{self.cpu['others'] / self.seconds:.0%}"

    def answers(self) -> str:
        total = max(1, sum(self.statuses.values()))
        shares = [f"{code} {n / total:.0%}" for code, n in self.statuses.items() if n]
        return ", ".join(shares) or "none"


def wrk(
    gunicorn: Gunicorn, case: Case, workdir: Path, *, connections: int, seconds: float, close: bool
) -> Run:
    env = {**os.environ, "POLL_MODE": case.key, "POLL_CLOSE": "1" if close else "0"}
    env["POLL_WATCHERS"] = str(workdir / "watchers.tsv")
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    command += ["-s", str(workdir / "watchers.lua"), gunicorn.url]
    meter = CpuMeter(gunicorn.process.pid)
    meter.start()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    cpu = meter.stop()
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    r = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
    return Run(
        case=case,
        requests=r["requests"],
        seconds=r["duration_us"] / 1e6,
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        max_ms=r["max_us"] / 1000,
        errors=r["errors"],
        statuses={c: r["c" + c] for c in ("200", "204", "286", "other")},
        cpu=cpu,
    )


def python_load(gunicorn: Gunicorn, case: Case, watchers: list[Watcher], *, requests: int) -> Run:
    """wrk's part where wrk is not installed (--tiny only): `requests` polls one after another,
    each on a new connection, the watchers taking turns, with the Lua script's URLs and headers."""
    queued = [w for w in watchers if w.state == "queued"]
    mates = [w for w in watchers if w.team_poll != "-"]
    latencies, statuses, errors = [], dict.fromkeys(("200", "204", "286", "other"), 0), 0
    meter = CpuMeter(gunicorn.process.pid)
    meter.start()
    started = time.perf_counter()
    for i in range(requests):
        if case is QUEUE:
            watcher = queued[i % len(queued)]
        elif case is TEAM:
            watcher = mates[i % len(mates)]
        else:
            watcher = watchers[i % len(watchers)]
        headers = {"Cookie": watcher.cookie_header, "HX-Request": "true", "Connection": "close"}
        sent = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=10)
        try:
            connection.request("GET", case_path(case, watcher), headers=headers)
            answer = connection.getresponse()
            answer.read()
        except OSError:
            errors += 1
            continue
        finally:
            connection.close()
        latencies.append((time.perf_counter() - sent) * 1000)
        code = str(answer.status)
        statuses[code if code in statuses else "other"] += 1
    seconds = time.perf_counter() - started
    return Run(
        case=case,
        requests=len(latencies),
        seconds=seconds,
        p50_ms=common.percentile(latencies, 0.50) if latencies else 0.0,
        p99_ms=common.percentile(latencies, 0.99) if latencies else 0.0,
        max_ms=max(latencies, default=0.0),
        errors=errors,
        statuses=statuses,
        cpu=meter.stop(),
    )


# --- At a fixed rate: the driver ----------------------------------------------------------------


def schedule(watchers: list[dict], case: Case, seconds: float, rng: random.Random):
    """(when, request bytes) for `case`: every watcher polls every POLL_SECONDS from a random
    start; with MIX, queued watchers also poll their place every QUEUE_POLL_SECONDS."""
    plan = []
    for w in watchers:
        if case is TEAM and w["team_poll"] == "-":
            continue  # only the first of each team watches a teammate's job
        polls = [(POLL_SECONDS, driver_path(case, w))]
        if case is MIX and w["state"] == "queued":
            polls.append((QUEUE_POLL_SECONDS, f"/jobs/{w['id']}/?part=queue"))
        for period, path in polls:
            request = (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {w['cookie']}\r\n"
                "HX-Request: true\r\nConnection: close\r\n\r\n"
            ).encode()
            when = rng.uniform(0, period)
            while when < seconds:
                plan.append((when, request))
                when += period
    plan.sort(key=lambda item: item[0])
    return plan


def driver_path(case: Case, w: dict) -> str:
    if case is BARE:
        return "/bench/bare/"
    if case is SIGNED_IN:
        return "/bench/signed-in/"
    if case is STALE:
        return f"/jobs/{w['id']}/status/"
    if case is TEAM:
        return w["team_poll"]
    return w["poll"]


async def drive(port: int, plan, warmup: float) -> dict:
    """Sends each request of `plan` at its time on a new connection, without waiting for the
    answers to earlier ones, and times each from when it was due."""
    loop = asyncio.get_running_loop()
    latencies, lags, statuses, errors = [], [], {}, 0
    start = loop.time() + 0.2

    async def one(due: float, request: bytes) -> None:
        nonlocal errors
        lags.append(loop.time() - due)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            head = await reader.readline()
            await reader.read()  # to the end: the server closes the connection
            writer.close()
            status = head.split(b" ", 2)[1].decode()
        except (OSError, IndexError, UnicodeDecodeError):
            errors += 1
            return
        if due - start >= warmup:
            latencies.append(loop.time() - due)
            statuses[status] = statuses.get(status, 0) + 1

    tasks = []
    for offset, request in plan:
        due = start + offset
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, request)))
    await asyncio.gather(*tasks)
    latencies.sort()
    lags.sort()

    def pick(values, q):
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else 0.0

    return {
        "requests": len(latencies),
        "p50_ms": pick(latencies, 0.50),
        "p99_ms": pick(latencies, 0.99),
        "max_ms": latencies[-1] * 1000 if latencies else 0.0,
        "lag_p99_ms": pick(lags, 0.99),
        "errors": errors,
        "statuses": statuses,
    }


def driver_main(args) -> None:
    """`--drive`: the fixed-rate load, in a process of its own."""
    spec = json.loads(args.drive)
    watchers = []
    with open(spec["watchers"]) as lines:
        for line in lines:
            job_id, state, poll, team_poll, cookie = line.rstrip("\n").split("\t")
            watchers.append(
                {"id": job_id, "state": state, "poll": poll, "team_poll": team_poll,
                 "cookie": cookie}
            )  # fmt: skip
    case = CASES_BY_KEY[spec["case"]]
    total = spec["warmup"] + spec["seconds"]
    plan = schedule(watchers, case, total, random.Random(spec["seed"]))
    result = asyncio.run(drive(spec["port"], plan, spec["warmup"]))
    result["offered"] = sum(1 for when, _ in plan if when >= spec["warmup"]) / spec["seconds"]
    print("RESULT " + json.dumps(result), flush=True)


def fixed_rate(
    gunicorn: Gunicorn, case: Case, workdir: Path, *, seconds: float, warmup: float = 4.0
) -> Run:
    spec = {"port": gunicorn.port, "case": case.key, "seconds": seconds, "warmup": warmup}
    spec.update(watchers=str(workdir / "watchers.tsv"), seed=1)
    meter = CpuMeter(gunicorn.process.pid)
    time.sleep(1)
    meter.start()
    command = [sys.executable, __file__, "--drive", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    cpu = meter.stop()
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"the driver failed:\n{done.stdout}\n{done.stderr}")
    r = json.loads(line.removeprefix("RESULT "))
    # CPU was metered over the warm-up too: scale it to the measured requests.
    share = seconds / (seconds + warmup)
    cpu = {k: v * share for k, v in cpu.items()}
    return Run(
        case=case,
        requests=r["requests"],
        seconds=seconds,
        p50_ms=r["p50_ms"],
        p99_ms=r["p99_ms"],
        max_ms=r["max_ms"],
        errors=r["errors"],
        statuses=r["statuses"],
        cpu=cpu,
        offered=r["offered"],
        lag_p99_ms=r["lag_p99_ms"],
    )


# --- Tables -------------------------------------------------------------------------------------


def best(runs: list[Run]) -> Run:
    """The best round: interference from the rest of the machine only ever slows a run."""
    return max(runs, key=lambda r: r.rate)


def spread(runs: list[Run]) -> str:
    rates = sorted(r.rate for r in runs)
    return f"{rates[0]:,.0f}–{rates[-1]:,.0f}" if len(rates) > 1 else ""


def machine() -> str:
    cpu = common.cpu_model()
    with open("/proc/meminfo") as info:
        mem_kb = int(info.readline().split()[1])
    import django
    import gunicorn
    import redis

    with psycopg.connect(f"{common.SERVER_URL}/postgres") as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    redis_version = redis.Redis.from_url(REDIS_URL).info("server")["redis_version"]
    wrk_version = "not installed"
    if shutil.which("wrk"):
        wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        wrk_version = (wrk_v.stdout + wrk_v.stderr).split()[1]
    return (
        f"{os.cpu_count()} vCPU ({cpu}), {mem_kb / 1024 / 1024:.0f} GB RAM,"
        f" Linux {platform.release()}; Python {platform.python_version()},"
        f" Django {django.get_version()}, gunicorn {gunicorn.__version__},"
        f" PostgreSQL {pg}, Redis {redis_version}, wrk {wrk_version}"
    )


# --- Running ------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.gunicorn: Gunicorn | None = None
        self.watchers: dict[str, list[Watcher]] = {}
        self.use_wrk = shutil.which("wrk") is not None
        self.warmup = 1.0 if args.tiny else 4.0  # before each run at 500 polls/s
        self.runs: list[Run] = []  # every measured run, for --tiny's check

    def serve(self, server: Server, engine: str) -> Gunicorn:
        self.stop()
        reset_sessions()
        self.watchers[engine] = watchers_with_sessions(engine)
        write_watchers(self.workdir / "watchers.tsv", self.watchers[engine])
        self.gunicorn = Gunicorn(server, engine, self.workdir)
        return self.gunicorn

    def stop(self) -> None:
        if self.gunicorn is not None:
            self.gunicorn.stop()
            self.gunicorn = None

    def rounds(self, server: Server, engine: str, cases: list[Case]) -> dict[Case, list[Run]]:
        """The cases take turns, --rounds times, each after a 1-s warm-up."""
        gunicorn = self.serve(server, engine)
        runs: dict[Case, list[Run]] = {case: [] for case in cases}
        for _ in range(self.args.rounds):
            for case in cases:
                self.top_speed(gunicorn, case, engine, seconds=1)
                runs[case].append(self.top_speed(gunicorn, case, engine, self.args.seconds))
                self.runs.append(runs[case][-1])
        return runs

    def top_speed(self, gunicorn: Gunicorn, case: Case, engine: str, seconds: float) -> Run:
        if not self.use_wrk:
            return python_load(gunicorn, case, self.watchers[engine], requests=TINY_REQUESTS)
        close = not self.args.keep_alive
        connections = self.args.connections
        return wrk(
            gunicorn, case, self.workdir, connections=connections, seconds=seconds, close=close
        )

    def load_tool(self) -> str:
        if self.use_wrk:
            return f"best of {self.args.rounds} rounds of {self.args.seconds} s, wrk -c{self.args.connections}"
        return f"{TINY_REQUESTS} requests one at a time from a Python client (wrk is not installed)"

    def check(self) -> bool:
        """--tiny: every run answered, with nothing but 200, 204 and 286, and no errors."""
        bad = []
        for r in self.runs:
            codes = {code for code, n in r.statuses.items() if n}
            if not r.requests or r.errors or not codes <= {"200", "204", "286"}:
                bad.append(
                    f"{r.case.name}: {r.requests} answered ({r.answers()}), {r.errors} errors"
                )
        print(
            f"\n{len(self.runs)} runs checked: "
            + ("; ".join(bad) if bad else "all answered 200/204/286, no errors")
        )
        return bool(self.runs) and not bad

    def top_speed_table(self, title: str, runs: dict[Case, list[Run]], queries=None) -> None:
        bare = best(runs[BARE]).rate
        header = [
            "case",
            "req/s",
            "× bare",
            "p50 ms",
            "p99 ms",
            "gunicorn CPU µs/req",
            "PostgreSQL CPU µs/req",
            "answers",
            "errors",
            "rounds req/s",
            "others",
        ]
        if queries:
            header.insert(1, "SQL queries")
        rows = []
        for case, case_runs in runs.items():
            r = best(case_runs)
            row = [
                case.name,
                f"{r.rate:,.0f}",
                f"{r.rate / bare:.2f}×",
                f"{r.p50_ms:.1f}",
                f"{r.p99_ms:.1f}",
                r.cpu_us("gunicorn"),
                r.cpu_us("postgres"),
                r.answers(),
                str(r.errors),
                spread(case_runs),
                r.others(),
            ]
            if queries:
                row.insert(1, queries[case])
            rows.append(row)
        common.print_table(title, header, rows, markdown=True, load=True)

    def all(self) -> None:
        args = self.args
        engine = args.engine
        servers = [Server.parse(s) for s in args.servers.split(",")]

        # 1. Top speed, per server setting.
        by_server = {}
        for server in servers:
            runs = self.rounds(server, engine, CASES)
            by_server[server] = runs
            queries = {
                case: queries_per_request(case, engine, self.watchers[engine]) for case in CASES
            }
            self.top_speed_table(
                f"Top speed, {server.name} (`{server.flags}`), sessions: {engine};"
                f" {self.load_tool()} (SQL queries: running / queued job)",
                runs,
                queries,
            )
        rows = []
        for server, runs in by_server.items():
            bare, fresh, team, stale = (best(runs[c]) for c in (BARE, FRESH, TEAM, STALE))
            rows.append(
                [
                    f"{server.name} (`{server.flags}`)",
                    f"{bare.rate:,.0f}",
                    f"{fresh.rate:,.0f}",
                    f"{fresh.rate / bare.rate:.2f}×",
                    f"{fresh.p99_ms:.1f}",
                    f"{team.rate / bare.rate:.2f}×",
                    f"{stale.rate:,.0f}",
                    f"{stale.rate / bare.rate:.2f}×",
                ]
            )
        common.print_table(
            "Top speed by server setting (status poll: 204 with the current version, 200 without)",
            [
                "gunicorn",
                "bare req/s",
                "204 req/s",
                "204 × bare",
                "204 p99 ms",
                "teammate's 204 × bare",
                "200 req/s",
                "200 × bare",
            ],
            rows,
            markdown=True,
            load=True,
        )
        chosen = max(by_server, key=lambda s: best(by_server[s][FRESH]).rate)
        print(f"\nChosen for what follows (the most 204 polls a second): {chosen.name}")

        # 2. The session engines, on the chosen setting.
        others = [e for e in SESSION_ENGINES if e != engine] if args.engines == "all" else []
        if args.engines not in ("all", "none"):
            others = args.engines.split(",")
        if not args.quick:
            cases = [BARE, SIGNED_IN, FRESH, TEAM, STALE]
            for other in others:
                runs = self.rounds(chosen, other, cases)
                queries = {
                    case: queries_per_request(case, other, self.watchers[other]) for case in cases
                }
                self.top_speed_table(
                    f"Sessions: {other}, {chosen.name}; best of {args.rounds} rounds"
                    " (SQL queries: running / queued job)",
                    runs,
                    queries,
                )

        # 3. 1,000 watchers polling every 2 s, on the chosen setting and on the docs' one.
        rate_servers = [chosen]
        docs = Server.parse(SERVERS[0])
        if docs != chosen and docs in by_server:
            rate_servers.append(docs)
        for server in rate_servers:
            gunicorn = self.serve(server, engine)
            cases = [BARE, FRESH, TEAM, STALE, MIX]
            runs: dict[Case, list[Run]] = {case: [] for case in cases}
            for _ in range(args.rate_rounds):
                for case in cases:
                    runs[case].append(
                        fixed_rate(
                            gunicorn,
                            case,
                            self.workdir,
                            seconds=args.rate_seconds,
                            warmup=self.warmup,
                        )
                    )
                    self.runs.append(runs[case][-1])
            rows = []
            for case, case_runs in runs.items():
                # Interference only ever adds latency: keep the round with the lowest p99.
                r = min(case_runs, key=lambda run: run.p99_ms)
                rounds = " / ".join(f"{run.p99_ms:,.0f}" for run in case_runs)
                rows.append(
                    [
                        case.name,
                        f"{r.offered:,.0f}",
                        f"{r.rate:,.0f}",
                        f"{r.p50_ms:.1f}",
                        f"{r.p99_ms:.1f}",
                        f"{r.max_ms:,.0f}",
                        r.cpu_us("gunicorn"),
                        r.cpu_us("postgres"),
                        r.answers(),
                        str(r.errors),
                        f"{r.lag_p99_ms:.1f}",
                        rounds,
                        r.others(),
                    ]
                )
            common.print_table(
                f"{WATCHERS:,} watchers polling every 2 s, {server.name} (`{server.flags}`), sessions:"
                f" {engine}; best of {args.rate_rounds} rounds of {args.rate_seconds} s, each"
                f" after a {self.warmup:g}-s warm-up",
                [
                    "case",
                    "asked req/s",
                    "answered req/s",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "gunicorn CPU µs/req",
                    "PostgreSQL CPU µs/req",
                    "answers",
                    "errors",
                    "driver lag p99 ms",
                    "rounds p99 ms",
                    "others",
                ],
                rows,
                markdown=True,
                load=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reseed", action="store_true", help="seed the bench database again")
    parser.add_argument("--quick", action="store_true", help="the docs' setting, 2 short rounds")
    parser.add_argument("--servers", default=",".join(SERVERS), help="e.g. sync:3,gthread:2x4")
    parser.add_argument("--rounds", type=int, default=3, help="turns of every case, best kept")
    parser.add_argument("--seconds", type=int, default=5, help="each top-speed run")
    parser.add_argument("--rate-seconds", type=int, default=20, help="each 500-polls/s run")
    parser.add_argument("--rate-rounds", type=int, default=2, help="turns at 500 polls/s")
    parser.add_argument("--connections", type=int, default=64, help="wrk's, at top speed")
    parser.add_argument("--keep-alive", action="store_true", help="reuse connections (top speed)")
    parser.add_argument("--engine", choices=SESSION_ENGINES, help="default: the studio's")
    parser.add_argument("--engines", default="all", help="others to compare: all, none, a list")
    parser.add_argument("--drive", help=argparse.SUPPRESS)  # the fixed-rate driver's process
    common.add_tiny_option(
        parser,
        f"{TINY['watchers']} watchers, {TINY['old_jobs']:,} older jobs seeded again,"
        f" {TINY_ARGS['servers']}, one short round of each case (a Python client if wrk is"
        f" missing), its own database ({TINY['database']}) and {TINY['redis_url']}; every answer"
        " must be 200, 204 or 286",
    )
    args = common.parse_args(parser, TINY_ARGS, not_with=("quick",))
    if args.drive:
        driver_main(args)
        return
    if args.tiny:
        global DATABASE, REDIS_URL, WATCHERS, OLD_JOBS
        DATABASE, REDIS_URL = TINY["database"], TINY["redis_url"]
        WATCHERS, OLD_JOBS = TINY["watchers"], TINY["old_jobs"]
    elif shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    if args.quick:
        args.servers, args.rounds, args.rate_seconds, args.rate_rounds = SERVERS[0], 2, 10, 1

    common.ensure_database(DATABASE, reseed=args.reseed)
    common.django_setup(server_env(""))
    from django.conf import settings

    if args.engine is None:
        args.engine = next(k for k, v in SESSION_ENGINES.items() if v == settings.SESSION_ENGINE)
    seed(again=args.tiny)
    print(f"Machine: {machine()}")
    print(f"Load average before: {common.loadavg()}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="polling-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "watchers.lua").write_text(LUA)
        bench = Bench(args, workdir)
        try:
            bench.all()
        finally:
            bench.stop()
    print(f"\nDone in {(time.monotonic() - started) / 60:.1f} min.")
    if args.tiny and not bench.check():
        sys.exit(1)


if __name__ == "__main__":
    main()
