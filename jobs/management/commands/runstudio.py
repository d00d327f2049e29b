"""Start the whole studio on one machine: Redis if needed, the simulator when there is no API key,
the worker host (jobs/workers.py), beat, and the web server. Ctrl-C stops every part.

Every part writes its metrics to one PROMETHEUS_MULTIPROC_DIR (var/metrics unless set), emptied
here first, so http://127.0.0.1:8000/metrics counts the workers' events too."""

import os
import shutil
import signal
import sys
import time
from urllib.parse import urlparse

import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from kombu.utils.url import maybe_sanitize_url

from jobs import imagerouter
from jobs.workers import WEB_NICENESS, ProcessGroup, lower_priority, worker_commands
from videostudio.metrics_dir import VARIABLE, multiprocess_dir_reset

READY_TIMEOUT = 15


class Command(BaseCommand):
    help = "Run the simulator (without an API key), Redis (if needed), worker, beat and web server."

    def add_arguments(self, parser):
        parser.add_argument(
            "--addr", default="127.0.0.1:8000", help="Where the web server listens."
        )

    def handle(self, *args, addr, **options):
        self.children = ProcessGroup()
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            self.ensure_redis()
            if settings.SIMULATOR_MODE:
                self.start_simulator()
            self.sync_catalog()
            if not settings.EMAIL_HOST:
                self.stdout.write(
                    "No EMAIL_HOST: emails (password resets, alerts) are printed by the "
                    "workers below instead of being sent"
                )
            # Before any child starts: each inherits the variable and writes its files there.
            os.environ.setdefault(VARIABLE, str(settings.BASE_DIR / "var" / "metrics"))
            multiprocess_dir_reset()
            for command in worker_commands().values():
                self.children.spawn(command)
            beat = [sys.executable, "-m", "celery", "-A", "videostudio", "beat"]
            self.children.spawn([*beat, "-s", "var/celerybeat-schedule"])
            self.stdout.write(
                self.style.SUCCESS(f"VideoStudio is at http://{addr}/ (Ctrl-C stops)")
            )
            web = [sys.executable, "manage.py", "runserver", "--noreload", addr]
            self.children.spawn([*lower_priority(WEB_NICENESS), *web])
            failed = self.children.wait()
            if failed:
                raise CommandError(f"A part of the studio stopped: {', '.join(failed)}")
        except KeyboardInterrupt:
            self.stdout.write("Stopping…")
        finally:
            self.children.stop()

    def ensure_redis(self):
        if _redis_answers(settings.REDIS_URL):
            return
        url = urlparse(settings.REDIS_URL)
        server = shutil.which("redis-server")
        if not server or url.hostname not in ("127.0.0.1", "localhost"):
            raise CommandError(
                f"Redis is not reachable at {maybe_sanitize_url(settings.REDIS_URL)}: install it "
                "(apt-get install redis-server, or brew install redis) or set REDIS_URL."
            )
        self.stdout.write(f"Starting a local redis-server on port {url.port or 6379}")
        port = str(url.port or 6379)
        self.children.spawn(
            [server, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no"]
        )
        _wait_for(lambda: _redis_answers(settings.REDIS_URL), "redis-server")

    def start_simulator(self):
        url = urlparse(settings.IMAGEROUTER_BASE_URL)
        self.stdout.write(f"No IMAGEROUTER_API_KEY: starting the simulator at {url.geturl()}")
        if settings.IMAGEROUTER_MANAGEMENT_KEY:
            # The simulator is told the studio's management key, so that provider-side caps
            # can be tried out offline. The child inherits it from this process's environment.
            os.environ.setdefault("SIM_MANAGEMENT_KEYS", settings.IMAGEROUTER_MANAGEMENT_KEY)
        port = str(url.port or 80)
        self.children.spawn(
            [sys.executable, "-m", "simulator", "--host", url.hostname, "--port", port]
        )
        _wait_for(_simulator_answers, "the simulator")

    def sync_catalog(self):
        try:
            call_command("sync_models", stdout=self.stdout)
        except CommandError as exc:
            self.stderr.write(f"{exc} Keeping the last catalog.")


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _simulator_answers() -> bool:
    try:
        imagerouter.get_client().list_models()
    except imagerouter.ImageRouterError:
        return False
    return True


def _wait_for(ready, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    raise CommandError(f"{what} did not start within {READY_TIMEOUT} s")
