"""Logs are JSON lines on stdout in production, and every line about a job names it (job_id)."""

import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings

from jobs.logcontext import JobIdFilter
from jobs.models import Job
from jobs.tasks import sweep
from tests.factories import submit
from tests.helpers import database_url, run_with_settings, wait_for
from videostudio.celery import app as celery_app
from videostudio.logs import JsonFormatter

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = {"DJANGO_ALLOWED_HOSTS": "studio.example.com", "DJANGO_SECRET_KEY": "k" * 50}
TASK_LINE = re.compile(r"^Task (jobs\.tasks\.\w+)\[([0-9a-f-]+)\] (received|succeeded)")


# What a Celery worker prints (not logs) from its signal handler when it is stopped.
SHUTDOWN_NOTICE = re.compile(r"^worker: \w+ shutdown \(MainProcess\)$")


def parse_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        if line.strip() and not SHUTDOWN_NOTICE.match(line):
            try:
                lines.append(json.loads(line))
            except ValueError:
                pytest.fail(f"a log line that is not JSON: {line!r}")
    return lines


@pytest.fixture
def json_lines():
    """The root logger's records, formatted as settings.LOGGING does with LOG_FORMAT=json."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(JobIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: parse_lines(stream.getvalue())
    finally:
        root.removeHandler(handler)


# The format ----------------------------------------------------------------------------------------


def test_a_line_is_one_json_object_with_time_level_logger_message_and_exception(json_lines):
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logging.getLogger("studio.test").exception("it broke: %s", "badly")

    [line] = json_lines()
    assert {k: line[k] for k in ("level", "logger", "message")} == {
        "level": "ERROR",
        "logger": "studio.test",
        "message": "it broke: badly",
    }
    assert line["time"].endswith("Z")
    logged_at = datetime.fromisoformat(line["time"])
    assert logged_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - logged_at) < timedelta(seconds=5)
    assert "ZeroDivisionError" in line["exception"]
    assert "job_id" not in line  # about no job


def test_a_job_named_in_a_services_message_is_its_job_id(json_lines):
    logging.getLogger("jobs.services").info("job %s: stored as %s", "1234-abcd", "videos/x.mp4")
    assert json_lines()[0]["job_id"] == "1234-abcd"


def log_in_a_fresh_process(**env) -> subprocess.CompletedProcess:
    return run_with_settings(
        "import django, logging; django.setup(); logging.getLogger('studio').warning('hello')",
        **env,
    )


def test_production_logs_json_lines_to_stdout():
    completed = log_in_a_fresh_process(**PRODUCTION)
    [line] = parse_lines(completed.stdout)
    assert (line["level"], line["logger"], line["message"]) == ("WARNING", "studio", "hello")


@pytest.mark.parametrize(
    ("env", "plain"),
    [({}, True), (PRODUCTION | {"LOG_FORMAT": "plain"}, True), ({"LOG_FORMAT": "json"}, False)],
    ids=["loopback", "production-asking-for-plain", "loopback-asking-for-json"],
)
def test_log_format_chooses_between_plain_and_json(env, plain):
    stdout = log_in_a_fresh_process(**env).stdout
    assert stdout.strip().endswith("WARNING studio hello") == plain
    assert stdout.startswith("{") != plain


def test_an_unknown_log_format_is_refused_at_start():
    completed = log_in_a_fresh_process(LOG_FORMAT="xml")
    assert completed.returncode != 0
    assert "LOG_FORMAT must be 'json' or 'plain'" in completed.stderr


# Web requests ----------------------------------------------------------------------------------


def test_a_request_about_a_job_logs_that_job_and_the_next_request_its_own(
    alice_client, bob, json_lines
):
    bobs = Job.objects.create(owner=bob, prompt="bob's", model="ir/test-video")
    unknown = uuid.uuid4()

    alice_client.get(f"/jobs/{bobs.pk}/")  # 404: not hers
    alice_client.get(f"/jobs/{unknown}/status/")
    alice_client.get("/no-such-page/")
    logging.getLogger("studio.test").warning("after the requests")

    lines = {line["message"]: line for line in json_lines()}
    assert lines[f"Not Found: /jobs/{bobs.pk}/"]["job_id"] == str(bobs.pk)
    assert lines[f"Not Found: /jobs/{unknown}/status/"]["job_id"] == str(unknown)
    assert "job_id" not in lines["Not Found: /no-such-page/"]
    assert "job_id" not in lines["after the requests"]


# A real worker -----------------------------------------------------------------------------------


def start_json_worker(broker_url, simulator, media_root, node) -> subprocess.Popen:
    """A Celery worker process with production's logging, serving every queue on ONE thread, so
    that the two jobs' tasks run one after another on the same thread."""
    env = os.environ | {
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker_url,
        "IMAGEROUTER_API_KEY": django_settings.IMAGEROUTER_API_KEY,
        "IMAGEROUTER_BASE_URL": simulator.url,
        "MEDIA_ROOT": str(media_root),
    }
    # --quiet: no startup banner, which Celery prints rather than logs.
    command = [sys.executable, "-m", "celery", "-A", "videostudio", "--quiet", "worker"]
    options = ["-Q", "generate,store,poster,celery", "-c", "1", "-n", node]
    return subprocess.Popen(
        [*command, *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished_with_poster(job_id) -> bool:
    job = Job.objects.get(pk=job_id)
    return job.status == Job.Status.SUCCEEDED and bool(job.poster)


def tasks_done(node: str, name: str) -> int:
    stats = celery_app.control.inspect(destination=[node], timeout=1).stats() or {}
    return stats.get(node, {}).get("total", {}).get(name, 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("catalog")
def test_every_worker_line_about_a_job_names_that_job(broker_url, simulator, alice, media_root):
    """Two jobs, each generated, stored and given a poster on the worker's one thread, then the
    sweeper: each job's lines, Celery's own "Task ... received/succeeded" lines among them, name
    that job, never the one that ran before it on the thread, and the sweeper's name none."""
    # Messages other tests left on the broker would run here too, about jobs of their own.
    redis.Redis.from_url(broker_url).flushdb()
    node = f"logs-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    worker = start_json_worker(broker_url, simulator, media_root, node)
    try:
        jobs = [submit(alice, f"logged {n}") for n in range(2)]
        for job in jobs:
            wait_for(lambda job=job: finished_with_poster(job.pk), timeout=90, what="the jobs")
        sweep.delay()
        wait_for(lambda: tasks_done(node, "jobs.tasks.sweep"), timeout=30, what="the sweep")
    finally:
        worker.send_signal(signal.SIGTERM)
        stdout, stderr = worker.communicate(timeout=60)
    ids = {str(job.pk) for job in jobs}
    lines = parse_lines(stdout)

    about_a_job = [line for line in lines if any(job_id in line["message"] for job_id in ids)]
    assert about_a_job, f"no line names a job; the worker said: {stdout}{stderr}"
    for line in about_a_job:
        named = next(job_id for job_id in ids if job_id in line["message"])
        assert line.get("job_id") == named, line

    task_lines = [(TASK_LINE.match(line["message"]), line) for line in lines]
    task_lines = [(match.groups(), line) for match, line in task_lines if match]
    by_task = {}
    task_lines = [(groups, line) for groups, line in task_lines if groups[0] != "jobs.tasks.sweep"]
    for (name, task_id, event), line in task_lines:
        if (name, event) == ("jobs.tasks.run_job", "received"):
            # A generate message names no job: its slot chooses one when it claims, after this
            # line (services/queue.py). Its "succeeded" line names the job it ran.
            assert "job_id" not in line, line
            continue
        assert line.get("job_id") in ids, f"a task line without its job: {line}"
        by_task.setdefault(task_id, set()).add(line["job_id"])
    assert all(len(jobs_named) == 1 for jobs_named in by_task.values()), by_task

    succeeded = sorted(
        (name, line["job_id"]) for (name, _, event), line in task_lines if event == "succeeded"
    )
    expected = [
        (f"jobs.tasks.{task}", job_id)
        for task in ("make_poster", "run_job", "store_job")
        for job_id in ids
    ]
    assert succeeded == sorted(expected)

    swept = [line for line in lines if line["message"].startswith("Task jobs.tasks.sweep[")]
    assert swept and all("job_id" not in line for line in swept), swept
    ready = [line for line in lines if line["message"].endswith(" ready.")]
    assert ready and "job_id" not in ready[0]
