"""A redis-server of the test's own, on a port of its own, to stop and start again. The shared
Redis on 6379 is never stopped."""

import socket
import subprocess
import time
from contextlib import contextmanager

import redis
from celery import Celery


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    def __init__(self, directory):
        self.port = free_port()
        self.directory = directory
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def queued(self, queue: str) -> int:
        return redis.Redis.from_url(self.url).llen(queue)


def reset_broker_connections(app: Celery) -> None:
    """Make the app connect anew, to whatever broker_url now says. Celery keeps one connection
    pool per app, made at first use from the broker_url of that moment. The old pool is let go,
    not closed: kombu's producers may still hold it, and would fail on a closed one."""
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def broker(app: Celery, url: str):
    """The app's messages go to `url` inside the block, and back to where they went after."""
    before = app.conf.broker_url
    app.conf.broker_url = url
    reset_broker_connections(app)
    try:
        yield
    finally:
        app.conf.broker_url = before
        reset_broker_connections(app)
