"""GET /healthz/full: the database, Redis, the video storage, and a worker answering for each
Celery queue, for an uptime monitor or an alert (the load balancer keeps /healthz)."""

import os
import subprocess
import sys
import uuid

import pytest
import redis

from tests.helpers import ROOT, TEST_BROKER_URL, wait_for
from tests.redis_server import RedisServer, broker
from videostudio import health
from videostudio.celery import app as celery_app

FULL = "/healthz/full"
QUEUES = ("celery", "generate", "mail", "poster", "store")


@pytest.fixture(autouse=True)
def fresh_answers():
    """Each test asks the workers and the storage anew (the process keeps their answers)."""
    health.full_check_forget()
    yield
    health.full_check_forget()


def start_worker(node: str, queues: str) -> subprocess.Popen:
    env = os.environ | {"REDIS_URL": TEST_BROKER_URL}
    command = [sys.executable, "-m", "celery", "-A", "videostudio", "worker", "-l", "WARNING"]
    return subprocess.Popen(
        [*command, "-Q", queues, "-n", node, "-c", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def answering(node: str) -> bool:
    return bool(celery_app.control.ping(destination=[node], timeout=1))


def test_it_is_503_naming_each_queue_when_no_worker_answers(client, db, broker_url):
    redis.Redis.from_url(broker_url).flushdb()

    response = client.get(FULL)

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "ok",
        "redis": "ok",
        "storage": "ok",
        "workers": dict.fromkeys(QUEUES, "no worker"),
    }
    assert "no-store" in response["Cache-Control"]


def test_it_is_200_only_once_a_worker_answers_for_every_queue(client, db, broker_url):
    suffix = uuid.uuid4().hex[:8]
    first = start_worker(f"main-{suffix}@test", "generate,store,celery")
    workers = [first]
    try:
        wait_for(lambda: answering(f"main-{suffix}@test"), timeout=60, what="the first worker")
        response = client.get(FULL)
        assert response.status_code == 503
        assert response.json()["workers"] == {
            "celery": "ok", "generate": "ok", "mail": "no worker", "poster": "no worker",
            "store": "ok",
        }  # fmt: skip

        workers.append(start_worker(f"poster-{suffix}@test", "poster,mail"))
        wait_for(lambda: answering(f"poster-{suffix}@test"), timeout=60, what="the second worker")
        health.full_check_forget()
        response = client.get(FULL, HTTP_HOST="10.0.0.5:8000")  # any Host, as /healthz
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "redis": "ok",
        "storage": "ok",
        "workers": dict.fromkeys(QUEUES, "ok"),
    }


def test_it_is_503_naming_redis_and_every_queue_when_redis_is_down(client, db, settings, tmp_path):
    server = RedisServer(tmp_path)  # a Redis of this test's own: the shared one is never stopped
    server.start()
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": server.url},
    }
    with broker(celery_app, server.url):
        server.stop()
        response = client.get(FULL)

    assert response.status_code == 503
    body = response.json()
    assert body["redis"] == "unreachable"
    assert body["database"] == "ok"
    assert body["workers"] == dict.fromkeys(QUEUES, "no worker")


def test_it_names_the_storage_when_a_video_cannot_be_written(client, db, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = blocker / "media"

    body = client.get(FULL).json()

    assert body["storage"] == "unreachable"
    assert body["status"] == "unavailable"


def test_a_flood_of_requests_asks_the_workers_once_per_interval(client, db, monkeypatch):
    asked = []
    real = health._queues_served
    monkeypatch.setattr(health, "_queues_served", lambda: asked.append(1) or real())

    for _ in range(5):
        client.get(FULL)

    assert len(asked) == 1
