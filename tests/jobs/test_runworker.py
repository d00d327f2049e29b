"""`manage.py runworker`: one worker host, as docker compose's `worker` service runs it."""

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

from tests.helpers import TEST_BROKER_URL, wait_for
from videostudio.celery import app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker_host(broker_url):
    node = f"host-{uuid.uuid4().hex[:8]}"
    env = os.environ | {"REDIS_URL": TEST_BROKER_URL, "CELERY_STORE_CONCURRENCY": "3"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runworker", "--node", node],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield node, process
    finally:
        if process.poll() is None:
            process.kill()
        # Its workers outlive it, reparented away from this process: find them by their names,
        # or a failed test leaves a worker host serving the test broker to later runs.
        for child in psutil.process_iter(["cmdline"]):
            if node in " ".join(child.info["cmdline"] or ()):
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()


def test_one_worker_host_serves_every_queue_and_stops_as_one(worker_host):
    node, process = worker_host
    names = {f"generate@{node}", f"store@{node}", f"poster@{node}", f"mail@{node}"}

    def queues():
        replies = app.control.inspect(destination=sorted(names), timeout=1).active_queues() or {}
        return replies if set(replies) == names else None

    replies = wait_for(queues, timeout=60, interval=0.5, what="the host's four workers")
    served = {name: sorted(q["name"] for q in replies[name]) for name in names}
    assert served == {
        f"generate@{node}": ["generate"],
        f"store@{node}": ["celery", "store"],
        f"poster@{node}": ["poster"],
        f"mail@{node}": ["mail"],
    }
    stats = app.control.inspect(destination=sorted(names), timeout=2).stats()
    concurrency = {name: stats[name]["pool"]["max-concurrency"] for name in names}
    assert concurrency == {
        f"generate@{node}": 3000, f"store@{node}": 3, f"poster@{node}": 1, f"mail@{node}": 8
    }  # fmt: skip
    # The store worker reserves 4 messages per thread, so a burst of results never waits in Redis
    # behind a full reservation while its threads are free; a paid call reserves one.
    prefetch = {name: stats[name]["prefetch_count"] for name in names}
    assert prefetch == {
        f"generate@{node}": 3000, f"store@{node}": 12, f"poster@{node}": 1, f"mail@{node}": 8
    }  # fmt: skip

    # The poster and mail workers run at a lower CPU priority than the others.
    workers = {
        name.split("@")[0]: child
        for child in psutil.Process(process.pid).children(recursive=True)
        for name in names
        if name in " ".join(child.cmdline())
    }
    assert workers["poster"].nice() > workers["store"].nice() == workers["generate"].nice()
    assert workers["mail"].nice() == workers["poster"].nice()

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert not any(
        worker.is_running() and worker.status() != "zombie" for worker in workers.values()
    )


def test_a_worker_that_dies_takes_its_host_down(worker_host):
    """A host missing a queue's worker would look alive while that queue grows: it exits
    instead, so docker compose (restart policy) or an operator sees it."""
    node, process = worker_host
    store = wait_for(
        lambda: next(
            (c for c in psutil.Process(process.pid).children()
             if f"store@{node}" in " ".join(c.cmdline())),
            None,
        ),
        timeout=30,
        what="the store worker",
    )  # fmt: skip
    store.kill()
    assert process.wait(timeout=60) != 0
