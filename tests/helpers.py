"""Helpers shared by the tests: fresh processes, a worker and waiting for it, threads released at
once, and reading pages as a person or htmx does. Builders of rows are in tests/factories.py."""

import json
import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings as django_settings
from django.db import connections
from django.urls import reverse
from django.utils.html import strip_tags

from jobs import services
from jobs.models import Job
from videostudio.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[1]
# Tests get their own Redis database, so a run never eats a developer's queued jobs. Two test
# runs at once on one machine must each set their own TEST_REDIS_URL.
TEST_BROKER_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# The variables a settings test starts without, whatever the developer's or CI's shell holds:
# each test then sets what it is about.
SETTINGS_PREFIXES = (
    "DJANGO_", "IMAGEROUTER_", "DATABASE_", "STORAGE_", "S3_", "MEDIA_", "LOG_", "OIDC_",
    "PASSWORD_LOGIN", "BREAK_GLASS_",
)  # fmt: skip


def run_with_settings(
    code: str = "import django; django.setup()", *, check: bool = False, **env
) -> subprocess.CompletedProcess:
    """`code` run by a fresh Python whose studio settings come from `env` and the defaults alone
    (settings are read once, at import, so a test of them needs a process of its own)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "videostudio.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def run_job_now(job_id) -> None:
    """A job's worker steps, run in this process: generate, store a URL result, make the poster."""
    services.job_run(job_id=job_id)
    services.job_store(job_id=job_id)
    services.job_make_poster(job_id=job_id)


def wait_for(predicate, *, timeout: float = 30, interval: float = 0.1, what="condition"):
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` s.
    `what` names the condition in the failure: a string, or a callable asked then (to show
    the state that was found instead)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what() if callable(what) else what}"
    )


def database_url() -> str:
    """The test database as a DATABASE_URL, for a process of its own (a worker, a fresh Python)."""
    db = django_settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def database_settings(**env) -> dict:
    """settings.DATABASES["default"] as a fresh process with `env` reads it."""
    completed = run_with_settings(
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default'], default=str))",
        check=True,
        **env,
    )
    return json.loads(completed.stdout)


def settings_variables() -> set[str]:
    """Every environment variable videostudio/settings.py reads."""
    source = (ROOT / "videostudio" / "settings.py").read_text()
    return set(re.findall(r'env_(?:str|bool|int|list)\(\s*"([A-Z_]+)"', source))


@contextmanager
def running_worker(
    broker_url, queues=("generate", "store", "poster", "mail", "celery"), concurrency=4
):
    """A real Celery worker thread consuming `queues` from the real Redis, until the block ends,
    running up to `concurrency` tasks at once."""

    def close_connections(**kwargs):
        # The worker thread's connections would otherwise outlive the test database.
        connections.close_all()

    task_postrun.connect(close_connections, weak=False)
    try:
        with start_worker(
            celery_app,
            pool="threads",
            concurrency=concurrency,
            queues=list(queues),
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=30,
        ) as started:
            yield started
    finally:
        task_postrun.disconnect(close_connections)


def finished(job_id) -> Job | None:
    """The job once it has reached a terminal state; None while it has not."""
    job = Job.objects.get(pk=job_id)
    return job if job.is_terminal else None


def delivery_recorded(**lookup) -> bool:
    """Whether a webhook delivery's worker has recorded the receiver's answer (delivered or
    failed): a test's receiver counts a message when it arrives, a moment before that."""
    from jobs.models import WebhookDelivery

    ended = WebhookDelivery.objects.filter(status__in=["delivered", "failed"], **lookup)
    return ended.exists()


def wait_until_finished(job, timeout=60) -> Job:
    return wait_for(lambda: finished(job.pk), timeout=timeout, what=f"job {job.pk} to finish")


def at_once(count: int, attempt, refusal: type[Exception]) -> tuple[list, list, list]:
    """`attempt(n)` for n in range(count), on `count` threads released together: what the attempts
    returned, the n of those refused with `refusal`, and any other errors."""
    barrier = threading.Barrier(count)
    accepted, refused, errors = [], [], []

    def run(n):
        try:
            barrier.wait()
            accepted.append(attempt(n))
        except refusal:
            refused.append(n)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return accepted, refused, errors


def visible_text(response) -> str:
    """The page as a person reads it: no tags, runs of whitespace as one space."""
    return re.sub(r"\s+", " ", strip_tags(response.content.decode())).strip()


def status_fragment(client, job, **query):
    return client.get(reverse("jobs:status", args=[job.pk]), query)


def poll_url(html: str) -> str:
    """The URL the status fragment polls, as htmx will read it."""
    return Elements(html).one("section")["hx-get"]


def poll_query(html: str) -> dict[str, str]:
    """The query the status fragment's poll carries: its version (v), its poll pass (p) and the
    typical wait (wait)."""
    return dict(parse_qsl(urlsplit(poll_url(html)).query))


def live_poll(client, job) -> dict[str, str]:
    """What the job page that `client` opens now will poll with."""
    return poll_query(page(client, job))


def page(client, job) -> str:
    return client.get(reverse("jobs:detail", args=[job.pk])).content.decode()


class Elements(HTMLParser):
    """Every start tag's attributes, by tag name, as the browser will see them (entities
    decoded), so a test can read an href or see that an attribute is missing."""

    def __init__(self, html: str):
        super().__init__()
        self.found: dict[str, list[dict]] = {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.found.setdefault(tag, []).append(dict(attrs))

    def all(self, tag) -> list[dict]:
        return self.found.get(tag, [])

    def one(self, tag) -> dict:
        (element,) = self.all(tag)
        return element
