"""Do two worker hosts share the work, and the videos, through S3? (issue 10, "Deployment and
scale-out")

    .venv/bin/python bench/scaleout.py                 # 100 jobs on two hosts, about a minute
    .venv/bin/python bench/scaleout.py --jobs 200 --latency 2

Needs the dev requirements (moto's S3 server, psutil): `.venv/bin/pip install -r
requirements-dev.txt`.

1. Makes (or reuses) its own PostgreSQL database, `videostudio_scaleout`, migrates it, empties its
   jobs and ledger, and uses Redis database 7 (`--redis-url`), flushed at the start and the end.
2. Starts moto's S3 server (`python -m moto.server`) on a free loopback port, with a private
   bucket, and the bundled simulator (`--latency`, 0.5 s; keep-alive spaces every 0.2 s).
3. Starts two worker hosts, `python manage.py runworker --node scaleout-a` and `--node
   scaleout-b` (each the generate, store, poster and mail workers of jobs/workers.py), each as
   if on a machine of its own: its own empty working directory, MEDIA_ROOT and TMPDIR, and
   STORAGE_BACKEND=s3 pointing at the bucket. This process is the web host: the same S3
   settings, and an empty MEDIA_ROOT of its own.
4. Submits `--jobs` jobs (100) from 4 people with `services.job_create`, as the form does, half
   of them `url` results (downloaded by a store worker, on either host) and half `b64_json`
   (stored by the generating worker). The per-person limits are off (JOB_SUBMITS_PER_MINUTE=0,
   JOB_ACTIVE_LIMIT=0): 4 people cannot press Generate 100 times in a minute.
5. Waits until every job has finished and has its poster (made on either host, from the video
   in the bucket), then checks, and exits non-zero if a check fails:
   - both hosts ran generations (jobs.tasks.run_job, from each worker's `inspect().stats()`);
   - every job SUCCEEDED;
   - every video is readable from the web host: a Django test Client logged in as the owner
     GETs the video URL, follows the 302 to the presigned S3 URL with requests, and gets an MP4
     (its `ftyp` box) of the size stored;
   - the simulator was paid exactly once per job;
   - nothing was written to any host's MEDIA_ROOT or working directory.

Everything it starts is stopped at the end, by process id. The logs of the last run (each host's,
the S3 server's) are in var/bench-scaleout/.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import common
import psutil
import redis
import requests
from botocore.exceptions import EndpointConnectionError

WORK_DIR = common.REPO_ROOT / "var" / "bench-scaleout"  # the hosts' logs of the last run

HOSTS = ("scaleout-a", "scaleout-b")
QUEUES = ("generate", "store", "poster")
TASKS = {"generate": "jobs.tasks.run_job", "store": "jobs.tasks.store_job",
         "poster": "jobs.tasks.make_poster"}  # fmt: skip
USERS = 4
USERNAME = "scaleout-user-{}"
BUCKET = "studio-scaleout"
# moto takes any key pair; these only have to be the same on every host.
S3_KEY, S3_SECRET = "scaleout-key", "scaleout-secret"
MODEL, SIZE, SECONDS = "ir/test-video", "640x360", "5"
START_TIMEOUT = 90
JOB_TIMEOUT = 600
# --tiny: the same path end to end in seconds: 6 jobs, two generations at a time per host (so
# both hosts get some), in a database, Redis database and folder of their own.
TINY = {"jobs": 6, "latency": 0.5, "concurrency": 2, "database": "videostudio_scaleout_tiny",
        "redis_url": "redis://127.0.0.1:6379/5"}  # fmt: skip
TINY_WORK_DIR = common.REPO_ROOT / "var" / "bench-scaleout-tiny"


# --- The S3 server and the simulator -------------------------------------------------------------


def start_s3() -> tuple[subprocess.Popen, str, object]:
    """moto's S3 server on a free loopback port, with the bucket made. A process of its own, as
    S3 is a service of its own: in a thread it would share this process's GIL with the web
    host's submits and reads, which the timings measure."""
    import boto3
    from botocore.config import Config

    port = common.free_port()
    url = f"http://127.0.0.1:{port}"
    with (WORK_DIR / "s3.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    client = boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            client.create_bucket(Bucket=BUCKET)
            return process, url, client
        except EndpointConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                sys.exit(f"the S3 server did not start; see {WORK_DIR / 's3.log'}")
            time.sleep(0.2)


def bucket_objects(client) -> dict[str, int]:
    """Every object in the bucket: key -> size."""
    objects = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        objects.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    return objects


# --- The settings every host reads ---------------------------------------------------------------


def studio_environment(args, *, s3_url: str, sim_url: str) -> dict[str, str]:
    """What videostudio/settings.py reads on every host, the web one included."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEROUTER_", "S3_"))}
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "videostudio.settings",
        "DJANGO_DEBUG": "false",  # DEBUG keeps every query in memory: not production
        "DATABASE_URL": f"{common.SERVER_URL}/{args.database}",
        "REDIS_URL": args.redis_url,
        "IMAGEROUTER_BASE_URL": sim_url,  # no key: simulator mode, and this simulator
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": BUCKET,
        "S3_ENDPOINT_URL": s3_url,
        "S3_ACCESS_KEY_ID": S3_KEY,
        "S3_SECRET_ACCESS_KEY": S3_SECRET,
        "JOB_SUBMITS_PER_MINUTE": "0",
        "JOB_ACTIVE_LIMIT": "0",
        "CELERY_GENERATE_CONCURRENCY": str(args.concurrency),
        "PYTHONUNBUFFERED": "1",
    }


def own_folders(root: Path) -> dict[str, Path]:
    """A host's working directory, MEDIA_ROOT and TMPDIR, all empty."""
    folders = {name: root / name for name in ("cwd", "media", "tmp")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    return folders


def files_in(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


# --- The worker hosts ----------------------------------------------------------------------------


@dataclass
class Host:
    node: str
    folders: dict[str, Path]
    process: subprocess.Popen
    log: Path
    tasks: dict[str, int] = field(default_factory=dict)  # queue -> tasks run

    def worker_names(self) -> set[str]:
        return {f"{queue}@{self.node}" for queue in QUEUES}


def start_host(node: str, env: dict[str, str], scratch: Path) -> Host:
    """`manage.py runworker` as a host of its own would run it: from its own working directory,
    with its own MEDIA_ROOT and TMPDIR. PYTHONPATH finds the project, as an installed image does."""
    folders = own_folders(scratch / node)
    host_env = {
        **env,
        "MEDIA_ROOT": str(folders["media"]),
        "TMPDIR": str(folders["tmp"]),
        "PYTHONPATH": str(common.REPO_ROOT),
    }
    log = WORK_DIR / f"{node}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, str(common.REPO_ROOT / "manage.py"), "runworker", "--node", node],
            cwd=folders["cwd"], env=host_env, stdin=subprocess.DEVNULL, stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    return Host(node, folders, process, log)


def wait_for_hosts(hosts: list[Host]) -> None:
    from videostudio.celery import app

    expected = set().union(*(host.worker_names() for host in hosts))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for host in hosts:
            if host.process.poll() is not None:
                tail = host.log.read_text(errors="replace")[-2000:]
                sys.exit(f"host {host.node} exited ({host.process.returncode}):\n{tail}")
        answered = {name for reply in app.control.ping(timeout=1) for name in reply}
        if expected <= answered:
            return
    sys.exit(
        f"the hosts' workers did not all answer a ping within {START_TIMEOUT} s; see {WORK_DIR}"
    )


def count_tasks(hosts: list[Host]) -> None:
    """Each worker's own count of the tasks it ran (Celery's `inspect stats`, `total`)."""
    from videostudio.celery import app

    names = sorted(set().union(*(host.worker_names() for host in hosts)))
    stats = app.control.inspect(destination=names, timeout=5).stats() or {}
    for host in hosts:
        for queue in QUEUES:
            totals = stats.get(f"{queue}@{host.node}", {}).get("total", {})
            host.tasks[queue] = totals.get(TASKS[queue], 0)


def stop_hosts(hosts: list[Host]) -> None:
    """SIGTERM to each runworker, which stops its workers; anything left after 30 s is killed,
    by process id."""
    trees = {}
    for host in hosts:
        with contextlib.suppress(psutil.NoSuchProcess):
            trees[host.node] = psutil.Process(host.process.pid).children(recursive=True)
        if host.process.poll() is None:
            host.process.terminate()
    for host in hosts:
        try:
            host.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            host.process.kill()
            host.process.wait()
        for child in trees.get(host.node, []):
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


# --- The web host: this process ------------------------------------------------------------------


def prepare_database() -> list:
    """Migrate, load the catalog from the simulator, empty the jobs, make the bench's people."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from jobs import services

    common.migrate()
    services.catalog_sync()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE jobs_costentry, jobs_notice, jobs_job CASCADE")
    users = get_user_model().objects
    return [users.get_or_create(username=USERNAME.format(i))[0] for i in range(1, USERS + 1)]


def submit(jobs: int, users: list) -> list:
    from jobs import services

    return [
        services.job_create(
            owner=users[i % len(users)],
            prompt=f"scale-out job {i}: a lighthouse in a storm",
            model=MODEL,
            size=SIZE,
            seconds=SECONDS,
            response_format="url" if i % 2 else "b64_json",
        ).pk
        for i in range(jobs)
    ]


def wait_until(done, what: str) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT
    while not done():
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {JOB_TIMEOUT} s waiting for {what}")
        time.sleep(0.25)


def all_finished(job_ids) -> bool:
    from jobs.models import Job

    return not Job.objects.filter(pk__in=job_ids).exclude(status__in=Job.TERMINAL).exists()


def all_postered(job_ids) -> bool:
    from jobs.models import Job

    jobs = Job.objects.filter(pk__in=job_ids, status=Job.Status.SUCCEEDED)
    return not jobs.filter(poster="").exists()


@dataclass
class Reading:
    readable: int = 0
    problems: list[str] = field(default_factory=list)


def read_every_video(job_ids, objects: dict[str, int]) -> Reading:
    """As each owner's browser would: the video URL (302), then the presigned URL in the bucket."""
    from django.test import Client
    from django.urls import reverse

    from jobs.models import Job

    reading = Reading()
    browser = requests.Session()
    browser.trust_env = False  # the loopback S3 server, whatever proxy the environment names
    clients = {}
    for job in Job.objects.filter(pk__in=job_ids).select_related("owner"):
        if job.owner_id not in clients:
            # A loopback host passes ALLOWED_HOSTS without setup_test_environment().
            clients[job.owner_id] = Client(HTTP_HOST="localhost")
            clients[job.owner_id].force_login(job.owner)
        response = clients[job.owner_id].get(reverse("jobs:video", args=[job.pk]))
        if response.status_code != 302:
            reading.problems.append(f"{job.pk}: the studio answered {response.status_code}")
            continue
        video = browser.get(response["Location"], timeout=30)
        stored = objects.get(job.video.name)
        if video.status_code != 200 or video.content[4:8] != b"ftyp":
            reading.problems.append(f"{job.pk}: S3 answered {video.status_code}, not an MP4")
        elif len(video.content) != stored:
            reading.problems.append(f"{job.pk}: {len(video.content)} bytes, {stored} stored")
        else:
            reading.readable += 1
    browser.close()
    return reading


# --- Printing -----------------------------------------------------------------------------------


def print_machine() -> None:
    import boto3
    import celery
    import django
    import moto
    import storages

    print(
        f"machine: {os.cpu_count()} CPU, {psutil.virtual_memory().total / 2**30:.0f} GiB,"
        f" kernel {platform.release()}; Python {platform.python_version()}, Django"
        f" {django.__version__}, Celery {celery.__version__}, django-storages"
        f" {storages.__version__}, boto3 {boto3.__version__}, moto {moto.__version__};"
        f" load average {common.loadavg()}"
    )


def print_hosts(hosts: list[Host], web_media: Path) -> None:
    rows = [
        [host.node, host.tasks["generate"], host.tasks["store"], host.tasks["poster"],
         len(files_in(host.folders["media"])), len(files_in(host.folders["cwd"]))]
        for host in hosts
    ]  # fmt: skip
    rows.append(["web (this process)", "—", "—", "—", len(files_in(web_media)), "—"])
    common.print_table(
        "Work per host (tasks each worker ran, from Celery's inspect stats)",
        ["host", "generations (run_job)", "URL downloads (store_job)", "posters (make_poster)",
         "files in MEDIA_ROOT", "files in its working directory"],
        rows,
        markdown=True,
    )  # fmt: skip


# --- Checking ----------------------------------------------------------------------------------


def run_jobs(count: int, users: list, timings: list) -> list:
    t0 = time.monotonic()
    job_ids = submit(count, users)
    timings.append((f"submit {count} jobs", time.monotonic() - t0))
    wait_until(lambda: all_finished(job_ids), "every job to finish")
    timings.append(("first submit → every job finished", time.monotonic() - t0))
    wait_until(lambda: all_postered(job_ids), "every poster")
    timings.append(("first submit → every poster", time.monotonic() - t0))
    return job_ids


def check(job_ids, *, hosts, s3, sim, web_media: Path, timings: list) -> list[tuple]:
    """(check, what was found, passed) for each promise of a scale-out on shared storage."""
    from jobs.models import Job

    jobs = list(Job.objects.filter(pk__in=job_ids))
    succeeded = [job for job in jobs if job.status == Job.Status.SUCCEEDED]
    count_tasks(hosts)
    generations = [host.tasks["generate"] for host in hosts]
    objects = bucket_objects(s3)
    videos = sum(key.startswith("videos/") for key in objects)
    posters = sum(key.startswith("posters/") for key in objects)
    t0 = time.monotonic()
    reading = read_every_video(job_ids, objects)
    timings.append((f"read {len(jobs)} videos through the web (302 → S3)", time.monotonic() - t0))
    paid = sim.stats()["paid_calls"]
    folders = [host.folders[name] for host in hosts for name in ("media", "cwd")] + [web_media]
    written = sum(len(files_in(folder)) for folder in folders)

    for job in jobs:
        if job.status != Job.Status.SUCCEEDED:
            print(f"  {job.pk}: {job.status} {job.error}")
    for problem in reading.problems[:10]:
        print(f"  {problem}")
    n = len(job_ids)
    return [
        ("both hosts ran generations", " + ".join(map(str, generations)),
         all(generations) and sum(generations) == n),
        ("jobs SUCCEEDED", f"{len(succeeded)} / {n}", len(succeeded) == n),
        ("videos readable by their owners (302 → presigned URL, ftyp, stored size)",
         f"{reading.readable} / {n}", reading.readable == n),
        ("simulator paid calls = jobs", f"{paid} = {n}", paid == n),
        ("objects in the bucket (videos, posters)", f"{videos}, {posters}",
         videos == posters == n),
        ("files written to any host's MEDIA_ROOT or working directory", written, written == 0),
    ]  # fmt: skip


def job_waits(job_ids) -> list[tuple[str, float]]:
    from jobs.models import Job

    jobs = Job.objects.filter(pk__in=job_ids, finished_at__isnull=False)
    waits = sorted((job.finished_at - job.created_at).total_seconds() for job in jobs)
    if not waits:
        return []
    return [
        ("per job, created → finished: median", statistics.median(waits)),
        ("per job, created → finished: p95", waits[int(0.95 * (len(waits) - 1))]),
    ]


# --- Main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.5, help="the simulator's, in s")
    parser.add_argument("--concurrency", type=int, default=50, help="generations per host")
    parser.add_argument("--database", default="videostudio_scaleout")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    common.add_tiny_option(
        parser,
        f"{TINY['jobs']} jobs, {TINY['concurrency']} generations at a time per host, its own"
        f" database ({TINY['database']}), {TINY['redis_url']} and {TINY_WORK_DIR.name}/",
    )
    args = common.parse_args(parser, TINY)
    if args.tiny:
        global WORK_DIR
        WORK_DIR = TINY_WORK_DIR
    common.check_database_name(args.database)
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    WORK_DIR.mkdir(parents=True)
    common.ensure_database(args.database)
    broker = redis.Redis.from_url(args.redis_url)
    broker.flushdb()

    # Stopped in the reverse order: the hosts, the simulator, S3, then the files and Redis.
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(broker.flushdb)
        scratch = Path(tempfile.mkdtemp(prefix="videostudio-scaleout-"))
        cleanup.callback(shutil.rmtree, scratch, ignore_errors=True)
        started = time.monotonic()
        s3_process, s3_url, s3 = start_s3()
        cleanup.callback(common.stop_process, s3_process)
        sim = common.start_simulator(
            {"SIM_LATENCY": f"{args.latency:g}", "SIM_KEEPALIVE_INTERVAL": "0.2"}
        )
        cleanup.callback(sim.stop)
        env = studio_environment(args, s3_url=s3_url, sim_url=sim.url)
        web_media = own_folders(scratch / "web")["media"]
        # This process as the web host. Its log stays at WARNING: the tables are the output.
        common.django_setup(
            {**env, "MEDIA_ROOT": str(web_media), "LOG_LEVEL": "WARNING"}, replace=True
        )
        users = prepare_database()
        print_machine()
        print(f"S3 {s3_url}/{BUCKET}; simulator {sim.url} ({args.latency:g} s latency);"
              f" {args.jobs} jobs from {USERS} people; {args.concurrency} generations per host")  # fmt: skip
        hosts: list[Host] = []
        cleanup.callback(stop_hosts, hosts)
        hosts.extend(start_host(node, env, scratch) for node in HOSTS)
        wait_for_hosts(hosts)
        timings = [("start S3, the simulator and 2 hosts", time.monotonic() - started)]

        job_ids = run_jobs(args.jobs, users, timings)
        checks = check(job_ids, hosts=hosts, s3=s3, sim=sim, web_media=web_media, timings=timings)
        print_hosts(hosts, web_media)
        common.print_table(
            "Checks",
            ["check", "found", "result"],
            [(name, found, "ok" if ok else "**FAILED**") for name, found, ok in checks],
            markdown=True,
        )
        timings += job_waits(job_ids)
        common.print_table(
            "Timings", ["step", "seconds"], [(s, f"{v:.2f}") for s, v in timings], markdown=True
        )
    passed = all(ok for _, _, ok in checks)
    print(f"\n{'all checks passed' if passed else 'SOME CHECKS FAILED'}; logs in {WORK_DIR}")
    if not passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
