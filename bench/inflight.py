"""How many generations can one worker host keep in flight, and what does each cost on top of
the provider's own time? (issue 9; DESIGN.md "Performance rules".)

    .venv/bin/python bench/inflight.py                              # threads -c 200, ~1 min
    .venv/bin/python bench/inflight.py --pool gevent
    .venv/bin/python bench/inflight.py --pool prefork --concurrency 7
    .venv/bin/python bench/inflight.py --compare      # threads, gevent, prefork 7 and 12, ~8 min
    .venv/bin/python bench/inflight.py --experiment   # store concurrency, submit spread, ~5 min
    .venv/bin/python bench/inflight.py --cpu-limit 0.8  # as on a machine 2.5 times slower (root)

Needs `.venv/bin/pip install -r bench/requirements.txt` (psutil, gevent, psycopg-pool).

1. Makes (or reuses) its own PostgreSQL database, `videostudio_inflight`, migrates it, empties
   its jobs and ledger, and uses Redis database 9 (emptied first) as broker and cache.
2. Starts the bundled simulator with a fixed latency (`--latency`, 5 s) and the provider's
   keep-alive interval (3 s). Jobs ask for `ir/test-video` at 640x360, the cheapest video, yet
   still about 0.2 CPU-seconds of ffmpeg each: 200 of them would take 44 CPU-seconds of the
   studio's 2 cores, work the real provider does on its own machines. So by default
   (`--render cached`) the simulator copies one MP4 rendered at start; `--render real` renders
   every video. The provider's reported latency is printed on its own line either way.
3. Starts one worker host with the command lines of `manage.py runworker` (jobs/workers.py):
   the generation worker (`-Q generate`, the chosen `--pool` and `--concurrency`), the store
   worker (`-Q store,celery`, threads, `--store-concurrency`), the poster worker (`-Q poster`,
   one at a time, at nice 10) and the mail worker (`-Q mail`, at nice 10); and the web server
   as the Dockerfile does (gunicorn, 2 workers of 4 threads), at nice 5 as `make run` starts it
   (`--web-nice N` for another value; compose gives the web container a smaller CPU weight
   instead). No beat: the sweeper would have nothing to do in a run of a minute.
4. Creates `--users` people (20), logs each in (a session as the login view makes it), GETs
   the form over HTTP for its CSRF token, then all of them at once POST `/jobs/new/`
   `--jobs` / `--users` times each, back to back (`--submit-over S` spreads them evenly over
   S seconds). The per-person limits (10 a minute,
   10 active) stay on: 20 x 10 fits them exactly.
5. Waits until every job has finished (and then for the posters, which follow), sampling meanwhile: jobs per status and PostgreSQL
   connections (every 0.1 s), calls open at the simulator (every 0.25 s), and the RSS (every
   0.1 s) and PSS (every 1 s) of the worker host, each worker with all its child processes.
6. Prints each job's submit-to-ready overhead, (finished_at - created_at) - latency_ms, split
   into its parts (queue: created -> claimed; call: claimed -> STORING less the provider's
   latency; store: STORING -> SUCCEEDED, and of it the answer's transaction, until the
   generation worker logs its commit, and the store task after it), how long its poster
   followed (the poster file's time), the peaks, the CPU-seconds each part used (PostgreSQL's whole server, and of it the
   backends of the bench database) and the CPU time the hypervisor took (steal).

`--env NAME=VALUE` passes a setting to the workers and the web server. On a
shared machine each run first waits (up to 4 minutes) for other work to pause. Everything it
starts is stopped at the end, by process id. Logs of the last run are in var/bench-inflight/.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import json
import logging
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

import common

REDIS_URL = "redis://127.0.0.1:6379/9"
WORK_DIR = common.REPO_ROOT / "var" / "bench-inflight"  # logs and media of the last run
# --tiny: the same path end to end in seconds, in a database, Redis database and folder of its own.
TINY = {"jobs": 4, "users": 2, "latency": 0.5, "concurrency": 8, "timeout": 120, "stall": 30,
        "database": "videostudio_inflight_tiny", "emails": True}  # fmt: skip
TINY_REDIS_URL = "redis://127.0.0.1:6379/1"
TINY_WORK_DIR = common.REPO_ROOT / "var" / "bench-inflight-tiny"

MODEL, SIZE, SECONDS = "ir/test-video", "640x360", "5"
USERNAME = "inflight-user-{:02d}"
PASSWORD = "inflight-bench-password"  # noqa: S105 - a bench account in a bench database
READY_PREFIX = "Simulator listening on "
START_TIMEOUT = 60
CORES = os.cpu_count() or 1

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --- Processes ----------------------------------------------------------------------------------


class Children:
    """Processes this bench started, each logging to its own file, stopped by pid at the end."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], env: dict, **popen) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("w")
        popen.setdefault("stdout", log)
        proc = subprocess.Popen(
            command, cwd=common.REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stderr=log, **popen
        )
        self.procs[name] = proc
        return proc

    def log_text(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def wait_for_log(self, name: str, pattern: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log_text(name)):
                return
            if self.procs[name].poll() is not None:
                break
            time.sleep(0.2)
        tail = self.log_text(name)[-2000:]
        raise RuntimeError(f"{name} did not start (no {pattern!r} in its log):\n{tail}")

    def stop_all(self) -> None:
        for proc in reversed(self.procs.values()):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


def start_simulator_child(children: Children, *, latency: float, render: str) -> str:
    env = {
        **os.environ,
        "SIM_LATENCY": f"{latency:g}",
        "SIM_KEEPALIVE_INTERVAL": "3",  # the provider's
        "SIM_CREDITS": "100000",
        "PYTHONUNBUFFERED": "1",
    }
    if render == "cached":
        command = [sys.executable, str(Path(__file__).resolve()), "_simulator_cached"]
    else:
        command = [sys.executable, "-m", "simulator", "--port", "0"]
    proc = children.start("simulator", command, env, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith(READY_PREFIX):
        raise RuntimeError(
            f"the simulator did not start: {line!r}\n{children.log_text('simulator')}"
        )
    # Keep reading its stdout so a full pipe can never block it.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return line.removeprefix(READY_PREFIX).strip()


def serve_simulator_cached() -> None:
    """The simulator, but every text-to-video render copies one MP4 rendered at start: the
    provider renders on its own machines, not on the studio's two cores."""
    from simulator import __main__ as simulator_main
    from simulator import render

    template = Path(tempfile.mkdtemp(prefix="inflight-sim-")) / "template.mp4"
    render.render_text_video("a cached render", 640, 360, 5, template)

    def cached_render(prompt, width, height, seconds, out):
        shutil.copyfile(template, out)

    render.render_text_video = cached_render
    try:
        simulator_main.main(["--port", "0"])
    finally:
        shutil.rmtree(template.parent, ignore_errors=True)


# --- The studio's database ----------------------------------------------------------------------


def prepare_database(users: int, *, emails: bool = False) -> None:
    """Migrate, load the catalog from the simulator, empty the jobs and the outbox, make the
    bench's people (with an email address each when `emails`)."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    call_command("sync_models", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE jobs_costentry, jobs_notice, jobs_job, jobs_outgoingemail CASCADE")
    password = make_password(PASSWORD)  # hashed once: 1,000,000 PBKDF2 rounds take 0.5 s
    for i in range(1, users + 1):
        username = USERNAME.format(i)
        address = f"{username}@bench.example" if emails else ""
        User.objects.update_or_create(
            username=username,
            defaults={"password": password, "is_active": True, "email": address},
        )
    connection.close()


class SMTPSink:
    """A real SMTP server on loopback (aiosmtpd) that accepts every message and counts them: the
    "video ready" emails a studio whose people have addresses sends for every job."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.port = common.free_port()
        self.received = 0
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        # aiosmtpd logs each command of each conversation at INFO: 3,000 emails were 30,000
        # lines printed by this process, on the cores the studio is measured on.
        logging.getLogger("mail.log").setLevel(logging.WARNING)

    async def handle_DATA(self, server, session, envelope):
        self.received += 1
        return "250 2.0.0 Message accepted for delivery"

    def __enter__(self):
        self._controller.start()
        return self

    def __exit__(self, *exc):
        self._controller.stop()


# --- Measuring while it runs --------------------------------------------------------------------


def process_trees(roots) -> dict[int, list[int]]:
    """Each root's pid followed by all its descendants', from one pass over /proc.

    psutil's children() makes a pass of its own on every call. Ten RSS samples a second of three
    workers, each asking twice, cost the bench client about 4 CPU-seconds a run, 15% of the two
    cores the studio under test is measured on, most of it during the burst of submits."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split(None, 2)
        except OSError:  # gone since the scan began
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    trees = {}
    for root in roots:
        pids, pending = [], [root]
        while pending:
            pid = pending.pop()
            pids.append(pid)
            pending.extend(children.get(pid, ()))
        trees[root] = pids
    return trees


def tree(pid: int):
    import psutil

    procs = []
    for each in process_trees([pid])[pid]:
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(each))
    return procs


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def rss(pid: int) -> int:
    """Resident set size in bytes, from /proc/PID/statm (what psutil reads, without psutil)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except OSError:  # exited since the scan
        return 0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float | None:
    """CPU-seconds (user + system) of one process, from /proc/PID/stat; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_rss(pid: int) -> int:
    return sum(rss(each) for each in process_trees([pid])[pid])


def pss(pid: int) -> int:
    """Proportional set size: shared pages (a prefork parent's, forked children's) counted once
    in all, not once per process as RSS counts them."""
    import psutil

    try:
        return psutil.Process(pid).memory_full_info().pss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


def tree_cpu(pid: int) -> float:
    """CPU-seconds of a process, its live descendants and the children it has reaped."""
    import psutil

    total = 0.0
    for i, proc in enumerate(tree(pid)):
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
        if i == 0 or proc.pid == pid:
            total += times.children_user + times.children_system
    return total


def postmaster_pid() -> int | None:
    import psycopg

    try:
        with psycopg.connect(f"{common.SERVER_URL}/postgres") as conn:
            data_dir = conn.execute("SHOW data_directory").fetchone()[0]
        return int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, psycopg.Error):
        return None


def max_connections() -> int:
    import psycopg

    with psycopg.connect(f"{common.SERVER_URL}/postgres") as conn:
        return int(conn.execute("SHOW max_connections").fetchone()[0])


def redis_pid() -> int | None:
    import psutil

    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "redis-server":
            return proc.pid
    return None


@dataclass
class Samples:
    rss_generate: int = 0
    rss_store: int = 0
    rss_poster: int = 0
    rss_mail: int = 0
    rss_host: int = 0  # the peak of the sum, sampled at the same moment
    rss_idle: int = 0
    pss_host: int = 0  # sampled every second: reading smaps costs more
    processes: int = 0
    running: int = 0
    queued: int = 0
    storing: int = 0
    sim_open: int = 0
    connections_mine: int = 0  # PostgreSQL connections to the bench database
    connections_all: int = 0  # to the whole server (max_connections counts these)
    load_max: float = 0.0
    loads: list = field(default_factory=list)
    # CPU-seconds of this database's backends: (at first sight, latest) by pid, every second
    backend_cpu: dict = field(default_factory=dict)
    rss_series: list = field(default_factory=list)  # (t, host rss)
    status_series: list = field(default_factory=list)  # (t, queued, running, storing, done)


class Sampler:
    def __init__(
        self, *, generate_pid, store_pid, poster_pid, mail_pid, database: str, sim_url: str
    ):
        self.host_pids = (generate_pid, store_pid, poster_pid, mail_pid)
        self.database, self.sim_url = database, sim_url
        self.samples = Samples()
        self.stop_event = threading.Event()
        self.t0 = time.monotonic()
        self.threads = [
            threading.Thread(target=self._rss, daemon=True),
            threading.Thread(target=self._pss, daemon=True),
            threading.Thread(target=self._statuses, daemon=True),
            threading.Thread(target=self._simulator, daemon=True),
            threading.Thread(target=self._load, daemon=True),
        ]

    def start(self):
        for thread in self.threads:
            thread.start()
        return self

    def stop(self):
        self.stop_event.set()
        for thread in self.threads:
            thread.join()

    def _every(self, seconds: float, action):
        while not self.stop_event.is_set():
            started = time.monotonic()
            action()
            self.stop_event.wait(max(0.0, seconds - (time.monotonic() - started)))

    def _rss(self):
        s = self.samples

        def sample():
            trees = process_trees(self.host_pids)
            generate, store, poster, mail = (
                sum(rss(each) for each in trees[pid]) for pid in self.host_pids
            )
            s.rss_generate = max(s.rss_generate, generate)
            s.rss_store = max(s.rss_store, store)
            s.rss_poster = max(s.rss_poster, poster)
            s.rss_mail = max(s.rss_mail, mail)
            s.rss_host = max(s.rss_host, generate + store + poster + mail)
            s.processes = max(s.processes, sum(len(pids) for pids in trees.values()))
            s.rss_series.append((time.monotonic() - self.t0, generate + store + poster + mail))

        self._every(0.1, sample)

    def _pss(self):
        s = self.samples

        def sample():
            trees = process_trees(self.host_pids).values()
            s.pss_host = max(s.pss_host, sum(pss(each) for pids in trees for each in pids))

        self._every(1.0, sample)

    def _statuses(self):
        import psycopg

        s = self.samples
        with psycopg.connect(f"{common.SERVER_URL}/{self.database}", autocommit=True) as conn:

            def sample():
                queued, running, storing, done = conn.execute(
                    "SELECT count(*) FILTER (WHERE status = 'queued'),"
                    " count(*) FILTER (WHERE status = 'running'),"
                    " count(*) FILTER (WHERE status = 'storing'),"
                    " count(*) FILTER (WHERE status IN ('succeeded', 'failed', 'canceled'))"
                    " FROM jobs_job"
                ).fetchone()
                s.queued, s.running = max(s.queued, queued), max(s.running, running)
                s.storing = max(s.storing, storing)
                s.status_series.append((time.monotonic() - self.t0, queued, running, storing, done))
                mine, everyone = conn.execute(
                    "SELECT count(*) FILTER (WHERE datname = current_database()), count(*)"
                    " FROM pg_stat_activity WHERE backend_type = 'client backend'"
                ).fetchone()
                s.connections_mine = max(s.connections_mine, mine)
                s.connections_all = max(s.connections_all, everyone)

            first = True

            def backends():
                nonlocal first
                pids = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                ).fetchall()
                for (pid,) in pids:
                    seconds = process_cpu(pid)
                    if seconds is None:
                        continue
                    # A backend that was there before the run counts from then; one opened
                    # during it, from its start.
                    since = s.backend_cpu.get(pid, (seconds if first else 0.0, 0.0))[0]
                    s.backend_cpu[pid] = (since, seconds)
                first = False

            tick = 0

            def both():
                nonlocal tick
                sample()
                if tick % 10 == 0:
                    backends()
                tick += 1

            self._every(0.1, both)

    def _simulator(self):
        s = self.samples

        def sample():
            stats = sim_stats(self.sim_url)
            if stats:
                settled = stats["paid_calls"] + stats["refunded"] + stats["rejected"]
                s.sim_open = max(s.sim_open, stats["generation_requests"] - settled)

        self._every(0.25, sample)

    def _load(self):
        s = self.samples

        def sample():
            load = os.getloadavg()[0]
            s.loads.append(load)
            s.load_max = max(s.load_max, load)

        self._every(1.0, sample)


def sim_stats(sim_url: str) -> dict | None:
    try:
        with _opener.open(sim_url + "/_sim/stats", timeout=5) as response:
            return json.load(response)
    except OSError:
        return None


# --- The people -----------------------------------------------------------------------------------


CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def log_in(web_url: str, username: str) -> tuple[requests.Session, str]:
    """A person's browser: logged in, with the generate form's CSRF token.

    The session is made in the database as the login view makes it (Django's force_login), not
    by POSTing the password: each login is 0.25 to 0.5 CPU-seconds of PBKDF2, and 300 people
    took three minutes of the two cores before anything was measured. The form is then fetched
    over HTTP with that session, which proves the web server takes it."""
    import requests
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username=username))
    connection.close()  # this thread's, back to the bench process's pool
    session = requests.Session()
    session.trust_env = False  # loopback only, whatever proxy the environment names
    cookie = settings.SESSION_COOKIE_NAME
    session.cookies.set(cookie, client.cookies[cookie].value)
    form = session.get(f"{web_url}/jobs/new/", allow_redirects=False, timeout=60)
    if form.status_code != 200:
        raise RuntimeError(f"{username} is not logged in: GET /jobs/new/ was {form.status_code}")
    return session, CSRF_INPUT.search(form.text).group(1)


@dataclass
class Submit:
    user: int
    started: float  # time.time()
    seconds: float
    status: int
    job_id: str = ""
    refusal: str = ""


ERROR_LIST = re.compile(r'<ul class="errorlist[^"]*"[^>]*>\s*<li>(.*?)</li>', re.S)


def submit_all(
    web_url: str, people: list[tuple[requests.Session, str]], per_user: int, over: float = 0.0
):
    """Every person presses Generate `per_user` times, all starting together: back to back, or
    with `over` seconds, at an even pace spread over that many seconds, the people taking turns."""
    barrier = threading.Barrier(len(people))
    submits: list[Submit] = []
    lock = threading.Lock()
    total = per_user * len(people)

    def person(index: int, session: requests.Session, token: str):
        barrier.wait()
        start = time.monotonic()
        for k in range(per_user):
            if over:
                turn = k * len(people) + index - 1
                time.sleep(max(0.0, start + over * turn / total - time.monotonic()))
            data = {
                "csrfmiddlewaretoken": token,
                "prompt": f"inflight bench: person {index:02d}, video {k + 1:02d}, a red fox",
                "model": MODEL,
                "seconds": SECONDS,
                "size": SIZE,
                "response_format": "url",
            }
            started, t0 = time.time(), time.perf_counter()
            answer = session.post(
                f"{web_url}/jobs/new/", data=data, allow_redirects=False, timeout=120
            )
            submit = Submit(index, started, time.perf_counter() - t0, answer.status_code)
            match = re.search(r"/jobs/([0-9a-f-]{36})/", answer.headers.get("Location", ""))
            if answer.status_code == 302 and match:
                submit.job_id = match.group(1)
            else:
                error = ERROR_LIST.search(answer.text)
                submit.refusal = re.sub(r"<[^>]+>", "", error.group(1)) if error else "?"
            with lock:
                submits.append(submit)

    threads = [
        threading.Thread(target=person, args=(i + 1, session, token))
        for i, (session, token) in enumerate(people)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return submits


def wait_for_posters(database: str, *, timeout: float) -> tuple[int, int, float]:
    """Posters come after SUCCEEDED, from the poster worker: wait for them too (they are part of
    the CPU the run costs). Returns (posters made, jobs succeeded, seconds from the last job's
    SUCCEEDED until the last poster was seen)."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(f"{common.SERVER_URL}/{database}", autocommit=True) as conn:
        last_finished = conn.execute(
            "SELECT extract(epoch FROM max(finished_at)) FROM jobs_job"
        ).fetchone()[0]
        while True:
            made, succeeded = conn.execute(
                "SELECT count(*) FILTER (WHERE poster <> ''),"
                " count(*) FILTER (WHERE status = 'succeeded') FROM jobs_job"
            ).fetchone()
            if made >= succeeded or time.monotonic() > deadline:
                lag = time.time() - float(last_finished) if last_finished else 0.0
                return made, succeeded, lag
            time.sleep(0.1)


def wait_until_done(database: str, expected: int, *, timeout: float, stall: float) -> bool:
    """Until every job is finished; or until `timeout`, or until `stall` seconds pass with no job
    changing state (a job left RUNNING or STORING by an error waits for the sweeper, which runs
    every minute but acts only after JOB_RUNNING_DEADLINE or JOB_STORING_DEADLINE)."""
    import psycopg

    deadline = time.monotonic() + timeout
    last, changed = None, time.monotonic()
    with psycopg.connect(f"{common.SERVER_URL}/{database}", autocommit=True) as conn:
        while time.monotonic() < deadline:
            counts = conn.execute(
                "SELECT status, count(*) FROM jobs_job GROUP BY status ORDER BY status"
            ).fetchall()
            done = sum(n for status, n in counts if status in ("succeeded", "failed", "canceled"))
            if done >= expected:
                return True
            if counts != last:
                last, changed = counts, time.monotonic()
            elif time.monotonic() - changed > stall:
                return False
            time.sleep(0.2)
    return False


# --- Figures ------------------------------------------------------------------------------------


def spread(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (float("nan"),) * 3
    return statistics.median(values), common.percentile(values, 0.95), max(values)


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f}"


@dataclass
class RunResult:
    label: str
    emails: int | None  # accepted by the SMTP server of --emails (None without it)
    pool: str
    concurrency: int
    jobs: int
    succeeded: int
    peak_running: int
    peak_sim_open: int
    overhead: tuple
    latency: tuple
    queue: tuple
    call: tuple
    store: tuple
    submit: tuple
    submit_window: float
    wall: float
    rss_host: int
    rss_generate: int
    rss_store: int
    rss_poster: int
    rss_mail: int
    rss_idle: int
    pss_host: int
    processes: int
    load_max: float
    load_mean: float
    cpu: dict
    cpu_window: float
    max_connections: int
    posters: tuple  # (made, succeeded, seconds after the last SUCCEEDED)


def figures(database: str, submits: list[Submit]) -> dict:
    import psycopg

    with psycopg.connect(f"{common.SERVER_URL}/{database}") as conn:
        rows = conn.execute(
            "SELECT status, attempt, latency_ms, error,"
            " extract(epoch FROM created_at), extract(epoch FROM started_at),"
            " extract(epoch FROM enqueued_at), extract(epoch FROM finished_at), poster, id::text"
            " FROM jobs_job ORDER BY created_at"
        ).fetchall()
    # The poster's file was written when it was made (the job records no time for it).
    posters = [
        (WORK_DIR / "media" / r[8]).stat().st_mtime - float(r[7])
        for r in rows
        if r[0] == "succeeded" and r[8] and (WORK_DIR / "media" / r[8]).exists()
    ]
    done = [r for r in rows if r[0] == "succeeded"]
    latency = [r[2] / 1000 for r in done]
    overhead = [float(r[7] - r[4]) - r[2] / 1000 for r in done]
    queue = [float(r[5] - r[4]) for r in done]
    call = [float(r[6] - r[5]) - r[2] / 1000 for r in done]
    store = [float(r[7] - r[6]) for r in done]
    # STORING's time (enqueued_at) is taken as the answer's transaction begins; the generation
    # worker logs "generated" once it has committed. The gap is that transaction's wait for the
    # roll-up rows every settlement shares (BENCHMARKS.md).
    committed = generated_at(WORK_DIR / "generate-worker.log")
    settle = [committed[r[9]] - float(r[6]) for r in done if r[9] in committed]
    store_task = [float(r[7]) - committed[r[9]] for r in done if r[9] in committed]
    first = min(s.started for s in submits)
    last_submit = max(s.started + s.seconds for s in submits)
    wall = max(float(r[7]) for r in rows if r[7] is not None) - first if rows else 0.0
    failures: dict[str, int] = {}
    for r in rows:
        if r[0] != "succeeded":
            key = f"{r[0]}: {(r[3] or '')[:90]}"
            failures[key] = failures.get(key, 0) + 1
    return {
        "rows": rows,
        "succeeded": len(done),
        "overhead": spread(overhead),
        "latency": spread(latency),
        "queue": spread(queue),
        "call": spread(call),
        "store": spread(store),
        "settle": spread(settle),
        "store_task": spread(store_task),
        "poster": spread(posters),
        "submit": spread([s.seconds for s in submits]),
        "submit_window": last_submit - first,
        "wall": wall,
        "failures": failures,
        "retried": sum(1 for r in rows if (r[1] or 0) > 1),
    }


def generated_at(log: Path) -> dict[str, float]:
    """{job id: when the generation worker logged "generated"}, from its log's local times."""
    found = {}
    if not log.exists():
        return found
    line_re = re.compile(r"^(\S+ \S+) .* job (\S+): generated, cost")
    for line in log.read_text(errors="replace").splitlines():
        if match := line_re.match(line):
            stamp = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
            found[match.group(2)] = stamp.timestamp()
    return found


STOLEN = "stolen by the hypervisor (steal; not in the rows above)"


def cpu_snapshot(pids: dict[str, int | None]) -> dict[str, float]:
    import psutil

    snap = {name: tree_cpu(pid) if pid else 0.0 for name, pid in pids.items()}
    me = psutil.Process()
    times = me.cpu_times()
    snap["bench client (this process)"] = times.user + times.system
    total = psutil.cpu_times()
    snap["the whole machine"] = (
        total.user
        + total.system
        + total.nice
        + getattr(total, "irq", 0)
        + (getattr(total, "softirq", 0))
    )
    # Time this VM was ready to run but the hypervisor ran someone else: a slow run with a lot
    # of it says more about the host than about the studio.
    snap[STOLEN] = getattr(total, "steal", 0.0)
    return snap


# --- One run --------------------------------------------------------------------------------------


def run(args, **overrides) -> RunResult:
    """One run with `args`, some of them overridden (pool, concurrency, ...)."""
    args = argparse.Namespace(**{**vars(args), **overrides})
    if not args.concurrency:
        args.concurrency = 12 if args.pool == "prefork" else 200
    common.check_database_name(args.database)
    common.ensure_database(args.database)
    if WORK_DIR.exists():
        shutil.rmtree(WORK_DIR)
    (WORK_DIR / "media").mkdir(parents=True)
    children = Children(WORK_DIR)
    try:
        with contextlib.ExitStack() as cleanup:
            return _run(args, children, cleanup)
    finally:
        children.stop_all()


def _run(args, children: Children, cleanup: contextlib.ExitStack) -> RunResult:
    pool, concurrency = args.pool, args.concurrency
    label = f"{pool} -c {concurrency}"
    if args.store_concurrency != 32:
        label += f", store -c {args.store_concurrency}"
    if args.submit_over:
        label += f", submits over {args.submit_over:g} s"
    if args.render != "cached":
        label += f", {args.render} render"
    if args.web_nice is not None:
        label += f", web at nice {args.web_nice}"
    print(f"\n=== {label}: {args.jobs} jobs from {args.users} people, latency {args.latency:g} s,"
          f" render {args.render} ===")  # fmt: skip
    sim_url = start_simulator_child(children, latency=args.latency, render=args.render)
    env = {
        "DATABASE_URL": f"{common.SERVER_URL}/{args.database}",
        "REDIS_URL": REDIS_URL,
        "IMAGEROUTER_BASE_URL": sim_url,
        "MEDIA_ROOT": str(WORK_DIR / "media"),
        "DJANGO_DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "videostudio.settings",
        "CELERY_GENERATE_CONCURRENCY": str(concurrency),
        "CELERY_STORE_CONCURRENCY": str(args.store_concurrency),
        "PYTHONUNBUFFERED": "1",
    }
    smtp = None
    if args.emails:
        smtp = cleanup.enter_context(SMTPSink())
        env |= {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp.port), "EMAIL_USE_TLS": "false"}
    for item in args.env:
        name, _, value = item.partition("=")
        env[name] = value
    if "django.conf" not in sys.modules:
        common.django_setup(env)
    from django.conf import settings

    settings.IMAGEROUTER_BASE_URL = sim_url  # a new simulator, on a new port, for every run
    common.flush_redis(REDIS_URL)
    prepare_database(args.users, emails=args.emails)
    child_env = {k: v for k, v in os.environ.items() if k != "IMAGEROUTER_API_KEY"} | env

    from jobs.workers import WEB_NICENESS, lower_priority, worker_commands

    # Exactly what `make run` and docker compose's worker run (jobs/workers.py), with the pool
    # under test. `-P prefork` is silently ignored when settings name a pool
    # (CELERY_WORKER_POOL = "threads"): Celery cannot tell it from its default. `processes` is
    # its other name.
    commands = worker_commands("inflight")
    pool_name = "processes" if pool == "prefork" else pool
    generate_cmd = [*commands["generate"], "-P", pool_name]
    port = common.free_port()
    web = ["videostudio.wsgi", "--bind", f"127.0.0.1:{port}"]
    web += ["--workers", str(args.web_workers), "--threads", str(args.web_threads)]
    # Below the workers in CPU priority, as make run starts it (compose weighs with cpu_shares).
    web_nice = WEB_NICENESS if args.web_nice is None else args.web_nice
    web_cmd = [*lower_priority(web_nice), sys.executable, "-m", "gunicorn", *web]
    if pool == "gevent":
        print(f"psycopg under celery's gevent patches waits with {psycopg_wait_under_gevent()}")
    generate_proc = children.start("generate-worker", generate_cmd, child_env)
    store_proc = children.start("store-worker", commands["store"], child_env)
    poster_proc = children.start("poster-worker", commands["poster"], child_env)
    mail_proc = children.start("mail-worker", commands["mail"], child_env)
    web_proc = children.start("web", web_cmd, child_env)
    children.wait_for_log("generate-worker", r"generate@inflight ready\.")
    banner = re.search(r"concurrency: (\d+) \((\w+)\)", children.log_text("generate-worker"))
    expected = {"threads": "thread", "gevent": "gevent", "prefork": "prefork"}[pool]
    if not banner or banner.groups() != (str(concurrency), expected):
        found = banner.group(0) if banner else "no banner"
        raise RuntimeError(f"the generation worker is not {pool} -c {concurrency}: {found}")
    children.wait_for_log("store-worker", r"store@inflight ready\.")
    children.wait_for_log("poster-worker", r"poster@inflight ready\.")
    children.wait_for_log("mail-worker", r"mail@inflight ready\.")
    children.wait_for_log("web", r"Booting worker")
    web_url = f"http://127.0.0.1:{port}"

    started = time.perf_counter()
    # As many at once as the web server has threads: 300 GETs at once only queue there.
    with concurrent.futures.ThreadPoolExecutor(args.web_workers * args.web_threads) as pool:
        people = list(
            pool.map(lambda i: log_in(web_url, USERNAME.format(i + 1)), range(args.users))
        )
    print(f"{args.users} people logged in in {time.perf_counter() - started:.1f} s;"
          f" load average {common.loadavg()}")  # fmt: skip

    pids = {
        "simulator (its ffmpeg renders included)": children.procs["simulator"].pid,
        "web: gunicorn": web_proc.pid,
        "generation worker": generate_proc.pid,
        "store worker": store_proc.pid,
        "poster worker (its ffmpeg included)": poster_proc.pid,
        "mail worker": mail_proc.pid,
        "PostgreSQL (the whole server)": postmaster_pid(),
        "Redis (the whole server)": redis_pid(),
    }
    if not args.tiny:
        wait_for_quiet()
    idle = sum(tree_rss(p.pid) for p in (generate_proc, store_proc, poster_proc, mail_proc))
    cpu_before, cpu_started = cpu_snapshot(pids), time.monotonic()
    sampler = Sampler(
        generate_pid=generate_proc.pid,
        store_pid=store_proc.pid,
        poster_pid=poster_proc.pid,
        mail_pid=mail_proc.pid,
        database=args.database,
        sim_url=sim_url,
    ).start()
    sampler.samples.rss_idle = idle
    submits = submit_all(web_url, people, args.jobs // args.users, args.submit_over)
    accepted = [s for s in submits if s.job_id]
    print(f"{len(accepted)} of {len(submits)} submits accepted in"
          f" {max(s.started + s.seconds for s in submits) - min(s.started for s in submits):.1f} s;"
          f" waiting for them to finish")  # fmt: skip
    finished = wait_until_done(args.database, len(accepted), timeout=args.timeout, stall=args.stall)
    # Posters come last, at nice 10, from the CPU the rest leaves: on a busy machine thousands
    # of them trail the jobs by minutes. The check is that none is lost; the lag is a figure.
    posters = wait_for_posters(args.database, timeout=600)
    emails = None
    if smtp is not None:
        deadline = time.monotonic() + 60  # they follow the stores, from the mail worker
        while smtp.received < posters[1] and time.monotonic() < deadline:
            time.sleep(0.2)
        emails = smtp.received
        print(f"'video ready' emails accepted by the bench's SMTP server: {emails}")
    sampler.stop()
    cpu_after, cpu_window = cpu_snapshot(pids), time.monotonic() - cpu_started
    if not finished:
        print("!! not every job finished: see 'Not as expected' below")
    refused: dict[str, int] = {}
    for s in submits:
        if not s.job_id:
            refused[f"HTTP {s.status}: {s.refusal[:100]}"] = (
                refused.get(f"HTTP {s.status}: {s.refusal[:100]}", 0) + 1
            )

    f = figures(args.database, submits)
    samples = sampler.samples
    cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_before}
    result = RunResult(
        emails=emails,
        label=label,
        pool=pool,
        concurrency=concurrency,
        jobs=len(accepted),
        succeeded=f["succeeded"],
        peak_running=samples.running,
        peak_sim_open=samples.sim_open,
        overhead=f["overhead"],
        latency=f["latency"],
        queue=f["queue"],
        call=f["call"],
        store=f["store"],
        submit=f["submit"],
        submit_window=f["submit_window"],
        wall=f["wall"],
        rss_host=samples.rss_host,
        rss_generate=samples.rss_generate,
        rss_store=samples.rss_store,
        rss_poster=samples.rss_poster,
        rss_mail=samples.rss_mail,
        rss_idle=samples.rss_idle,
        pss_host=samples.pss_host,
        processes=samples.processes,
        load_max=samples.load_max,
        load_mean=statistics.mean(samples.loads) if samples.loads else 0.0,
        cpu=cpu,
        cpu_window=cpu_window,
        max_connections=max_connections(),
        posters=posters,
    )
    report(result, f, refused, samples)
    return result


def report(r: RunResult, f: dict, refused: dict, samples: Samples) -> None:
    def sec(values):
        return [f"{v:.2f}" for v in values]

    common.print_table(
        f"{r.label}: {r.succeeded} of {r.jobs} jobs succeeded"
        f" [load average max {r.load_max:.2f}, mean {r.load_mean:.2f}; now {common.loadavg()}]",
        ["seconds per job", "median", "p95", "max"],
        [
            ["overhead: (finished - created) - provider latency", *sec(r.overhead)],
            ["  queue: created -> claimed (RUNNING)", *sec(r.queue)],
            ["  call: claimed -> STORING, less the provider latency", *sec(r.call)],
            ["  store: STORING -> SUCCEEDED", *sec(r.store)],
            ["    the answer's transaction: STORING -> committed", *sec(f["settle"])],
            ["    the store task: committed -> SUCCEEDED", *sec(f["store_task"])],
            ["poster: SUCCEEDED -> poster file written", *sec(f["poster"])],
            ["provider latency (latency_ms: the wait + its render)", *sec(r.latency)],
            ["submit: POST /jobs/new/ as the person waits for it", *sec(r.submit)],
        ],
    )
    common.print_table(
        "In flight and memory",
        ["what", "value"],
        [
            ["jobs RUNNING at once, peak (database, every 0.1 s)", str(r.peak_running)],
            ["calls open at the simulator, peak (every 0.25 s)", str(samples.sim_open)],
            ["jobs QUEUED at once, peak", str(samples.queued)],
            ["jobs STORING at once, peak", str(samples.storing)],
            ["PostgreSQL connections to the bench database, peak", str(samples.connections_mine)],
            [
                f"PostgreSQL connections to the server, peak (of {r.max_connections})",
                str(samples.connections_all),
            ],
            ["submit window: first POST -> last answer, s", f"{r.submit_window:.1f}"],
            ["wall time: first POST -> last job finished, s", f"{r.wall:.1f}"],
            [
                "posters made / jobs succeeded; the last one, s after the last job",
                f"{r.posters[0]} / {r.posters[1]}; {r.posters[2]:.1f}",
            ],
            ["worker host RSS before the run, MiB", mib(r.rss_idle)],
            ["worker host RSS, peak, MiB (every 0.1 s)", mib(r.rss_host)],
            ["  generation worker and its children, peak MiB", mib(r.rss_generate)],
            ["  store worker and its children, peak MiB", mib(r.rss_store)],
            ["  poster worker and its ffmpeg, peak MiB", mib(r.rss_poster)],
            ["  mail worker, peak MiB", mib(r.rss_mail)],
            ["worker host PSS, peak, MiB (every 1 s; shared pages once)", mib(r.pss_host)],
            ["worker host processes, peak", str(r.processes)],
        ],
    )
    busy = r.cpu["the whole machine"]
    window = max(r.cpu_window, 0.001)
    rows = []
    mine = 0.0
    for name, seconds in r.cpu.items():
        if name in ("the whole machine", STOLEN):
            continue
        mine += seconds
        rows.append([name, f"{seconds:.1f}", f"{100 * seconds / window / CORES:.0f}%"])
        if name.startswith("PostgreSQL"):
            ours = sum(latest - since for since, latest in samples.backend_cpu.values())
            rows.append(["  of it, the bench database's backends (every 1 s)", f"{ours:.1f}",
                         f"{100 * ours / window / CORES:.0f}%"])  # fmt: skip
    rows.append(["others (kernel, other work on the machine)", f"{busy - mine:.1f}",
                 f"{100 * (busy - mine) / window / CORES:.0f}%"])  # fmt: skip
    rows.append(["the whole machine", f"{busy:.1f}", f"{100 * busy / window / CORES:.0f}%"])
    stolen = r.cpu.get(STOLEN, 0.0)
    rows.append([STOLEN, f"{stolen:.1f}", f"{100 * stolen / window / CORES:.0f}%"])
    common.print_table(
        f"CPU time from the first POST until the last poster ({CORES} cores x"
        f" {window:.1f} s = {CORES * window:.0f} CPU-seconds)",
        ["part", "CPU-s", f"share of {CORES} cores"],
        rows,
    )
    errors = log_errors()
    if f["failures"] or refused or f["retried"] or errors:
        print("\nNot as expected:")
        for what, count in {**f["failures"], **refused}.items():
            print(f"  {count} x {what}")
        if f["retried"]:
            print(f"  {f['retried']} jobs took more than one attempt")
        for what, count in errors.items():
            print(f"  {count} x {what}")


COMPARISON_HEADER = [
    "pool",
    "concurrency",
    "in flight at once",
    "overhead median s",
    "p95 s",
    "max s",
    "wall s",
    "peak RSS MiB",
    "peak PSS MiB",
    "latency median s",
    "load max",
]


def psycopg_wait_under_gevent() -> str:
    """Which wait function psycopg chose after celery's gevent patches: wait_c blocks the whole
    process on every query; a patched wait_poll or wait_select yields to other greenlets."""
    code = (
        "from celery import maybe_patch_concurrency;"
        " maybe_patch_concurrency(['celery', 'worker', '-P', 'gevent']);"
        " import psycopg.waiting as w; print(w.wait.__name__)"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=common.REPO_ROOT,
    )
    return answer.stdout.strip() or answer.stderr.strip()[-200:]


def wait_for_quiet(*, busy_below: float = 25.0, at_most: float = 240.0) -> None:
    """The machine may be shared: wait (a while) for others' work to pause before starting, so
    the figures are this run's. What still overlaps shows as "others" in the CPU table."""
    import psutil

    started = time.monotonic()
    while (busy := psutil.cpu_percent(interval=2.0)) >= busy_below:
        if time.monotonic() - started > at_most:
            print(f"  the machine is still {busy:.0f}% busy with other work; starting anyway")
            return
    waited = time.monotonic() - started
    if waited > 2.5:
        print(f"  waited {waited:.0f} s for the machine to be quiet ({busy:.0f}% busy)")


def log_errors() -> dict[str, int]:
    """ERROR lines in the workers' and web server's logs, counted by their message."""
    counts: dict[str, int] = {}
    for name in ("generate-worker", "store-worker", "web"):
        path = WORK_DIR / f"{name}.log"
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if " ERROR " in line:
                message = re.sub(r"\[[0-9a-f-]{36}\]", "[…]", line.split(" ERROR ", 1)[1])
                message = re.sub(r"\(\d+\)|:\d{4,5}", "", message)
                key = f"{name} log: {message[:160]}"
                counts[key] = counts.get(key, 0) + 1
    return counts


def print_comparison(results: list[RunResult]) -> None:
    rows = []
    for r in results:
        rows.append(
            [
                r.label,
                str(r.concurrency),
                f"{r.peak_running} / {r.jobs}",
                f"{r.overhead[0]:.2f}",
                f"{r.overhead[1]:.2f}",
                f"{r.overhead[2]:.2f}",
                f"{r.wall:.1f}",
                mib(r.rss_host),
                mib(r.pss_host),
                f"{r.latency[0]:.2f}",
                f"{r.load_max:.1f}",
            ]
        )
    common.print_table(
        f"Pools compared [load average now {common.loadavg()}]",
        COMPARISON_HEADER,
        rows,
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_simulator_cached":
        serve_simulator_cached()
        return

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", choices=["threads", "gevent", "prefork"], default="threads")
    parser.add_argument("--concurrency", type=int, help="default: 200 (prefork: 12)")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--latency", type=float, default=5.0, help="the simulator's, seconds")
    parser.add_argument(
        "--render",
        choices=["cached", "real"],
        default="cached",
        help="cached: the simulator copies one pre-rendered MP4 (default); real: it runs ffmpeg"
        " for every video, about 0.2 CPU-s each, on the same 2 cores",
    )
    parser.add_argument(
        "--submit-over",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="spread the submits evenly over this long (default: back to back)",
    )
    parser.add_argument("--store-concurrency", type=int, default=32, help="as settings (32)")
    parser.add_argument(
        "--emails",
        action="store_true",
        help="give each person an email address and run an SMTP server, so every job's 'video"
        " ready' email is written and sent, as in a studio whose people have addresses (default:"
        " no addresses, as the earlier figures)",
    )
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument(
        "--web-nice",
        type=int,
        help="the web server's nice value (default: jobs.workers.WEB_NICENESS, as make run)",
    )
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the jobs")
    parser.add_argument(
        "--stall", type=float, default=60, help="stop waiting after this long with no progress"
    )
    parser.add_argument("--database", default="videostudio_inflight")
    parser.add_argument(
        "--cpu-limit",
        type=float,
        metavar="CORES",
        help="give the run, PostgreSQL and Redis only this many cores' worth of CPU time (a"
        " cgroup quota; needs root): 0.8 on 2 cores makes every CPU-second cost 2.5 times as long,"
        " a slower machine's margin (bench/cpu_limit.py)",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="run threads, gevent and prefork (--prefork-concurrency) one after another",
    )
    parser.add_argument("--prefork-concurrency", default="7,12", help="for --compare")
    parser.add_argument(
        "--experiment",
        action="store_true",
        help="the store worker's concurrency (8, 32) and submits back to back or over 4 s",
    )
    common.add_tiny_option(
        parser,
        f"4 jobs from 2 people, latency 0.5 s, its own database ({TINY['database']}),"
        f" {TINY_REDIS_URL} and {TINY_WORK_DIR.name}/; no wait for a quiet machine",
    )
    args = common.parse_args(parser, TINY, not_with=("compare", "experiment", "cpu_limit"))
    if args.tiny:
        global REDIS_URL, WORK_DIR
        REDIS_URL, WORK_DIR = TINY_REDIS_URL, TINY_WORK_DIR
    if args.jobs % args.users:
        parser.error("--jobs must be a multiple of --users")

    print(
        f"{CORES} cores, load average {common.loadavg()}; logs in {WORK_DIR.relative_to(common.REPO_ROOT)}/"
    )
    if args.cpu_limit:
        from cpu_limit import CpuLimitError, limited_cpu

        print(f"CPU limited to {args.cpu_limit} cores' worth for the bench, PostgreSQL and Redis;"
              " the machine's totals (\"others\") are sampled on timer ticks and can disagree"
              " with the processes' own figures under a quota")  # fmt: skip
        try:
            with limited_cpu(args.cpu_limit):
                results = run_all(args)
        except CpuLimitError as exc:
            sys.exit(f"--cpu-limit: {exc}")
    else:
        results = run_all(args)
    print_comparison(results)
    failed = [
        r.label
        for r in results
        if not r.jobs == r.succeeded == args.jobs
        or r.posters[0] < r.posters[1]
        or (r.emails is not None and r.emails < r.succeeded)
    ]
    if failed:
        sys.exit(
            "not every job was accepted, succeeded and got its poster (and with --emails, its"
            f" email): {', '.join(failed)}"
        )


def run_all(args) -> list[RunResult]:
    if args.compare:
        results = [run(args, pool="threads", concurrency=200)]
        results.append(run(args, pool="gevent", concurrency=200))
        for n in args.prefork_concurrency.split(","):
            results.append(run(args, pool="prefork", concurrency=int(n)))
    elif args.experiment:
        results = [
            run(args, pool="threads", concurrency=200, store_concurrency=n, submit_over=over)
            for over in (0.0, 4.0)
            for n in (32, 8)
        ]
    else:
        results = [run(args)]
    return results


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    main()
