"""What one worker host runs: a Celery worker per queue, each sized for its work.

`manage.py runworker` (docker compose's `worker` service), `manage.py runstudio` (make run) and
the benchmarks all start these exact command lines, so what is measured is what is shipped.

- generate: paid calls, each a wait of seconds to minutes, on CELERY_GENERATE_CONCURRENCY
  threads (3,000);
- store: downloads and decodes of finished videos, plus the sweeper, catalog sync and webhook
  deliveries (each POST at most 15 s) on the default queue, on CELERY_STORE_CONCURRENCY threads (32);
- poster: one ffmpeg decode at a time (CELERY_POSTER_CONCURRENCY, 1), in a process at a lower
  CPU priority, so that posters use the cores only when the stores leave them idle.
  BENCHMARKS.md shows why: posters sharing the store queue's threads were most of the studio's
  overhead when hundreds of results landed at once;
- mail: the outbox's emails, one SMTP conversation each, on CELERY_MAIL_CONCURRENCY threads (8),
  at the posters' lower CPU priority. Sent from the store worker, 3,000 "video ready" emails
  made its stores wait tens of seconds (BENCHMARKS.md); an email a few seconds late harms no one.
"""

import shutil
import subprocess
import sys
import time

from django.conf import settings

# Added to the background workers' nice value (Unix), the poster's and the mail's: the kernel
# gives them the CPU time that the web server, the stores and the generations leave over.
BACKGROUND_NICENESS = 10
# Added to the web server's (make run): when the cores are short, a job already accepted is
# claimed and called before another submit is taken. A claim costs a few milliseconds, so the
# web loses little; without this a burst of submits left 30 to 75 jobs waiting for their claim
# (BENCHMARKS.md, "Session 6: the web server below the workers"). Docker compose gives the web
# container a smaller CPU weight instead (cpu_shares): a nice value counts only within a container.
WEB_NICENESS = 5
# The store worker reserves this many messages per thread (the generate worker one, settings'
# CELERY_WORKER_PREFETCH_MULTIPLIER). With one per thread, 200 results landing in 3 s kept its
# reservations full, and a store then sat in Redis 0.4 to 0.55 s (median) before the worker took
# it, though a thread was free at once (BENCHMARKS.md). A store never calls the API, so holding a
# few more messages risks nothing: a lost one is re-sent by the sweeper.
STORE_PREFETCH_MULTIPLIER = 4


def worker_commands(node: str = "%h", *, python: str = sys.executable) -> dict[str, list[str]]:
    """The Celery worker command lines of one host, by queue. `node` is the part of each
    worker's name after the @ (Celery expands %h to the host name)."""
    # No --loglevel: LOG_LEVEL decides, through settings.LOGGING (videostudio/logs.py).
    worker = [python, "-m", "celery", "-A", "videostudio", "worker"]
    return {
        "generate": [*worker, "-Q", "generate", "-n", f"generate@{node}",
                     "-c", str(settings.CELERY_WORKER_CONCURRENCY)],
        "store": [*worker, "-Q", "store,celery", "-n", f"store@{node}",
                  "--prefetch-multiplier", str(STORE_PREFETCH_MULTIPLIER),
                  "-c", str(settings.CELERY_STORE_CONCURRENCY)],
        "poster": [*lower_priority(BACKGROUND_NICENESS), *worker, "-Q", "poster",
                   "-n", f"poster@{node}", "-c", str(settings.CELERY_POSTER_CONCURRENCY)],
        "mail": [*lower_priority(BACKGROUND_NICENESS), *worker, "-Q", "mail",
                 "-n", f"mail@{node}", "-c", str(settings.CELERY_MAIL_CONCURRENCY)],
    }  # fmt: skip


def lower_priority(niceness: int) -> list[str]:
    """A prefix for a command line that runs it `niceness` steps below this process's CPU
    priority (nothing where there is no `nice`)."""
    nice = shutil.which("nice")
    return [nice, "-n", str(niceness)] if nice else []


class ProcessGroup:
    """Child processes that live and die together: when one stops, `wait` returns, and `stop`
    ends the others (SIGTERM, then SIGKILL after `grace` seconds)."""

    def __init__(self):
        self.children: list[subprocess.Popen] = []

    def spawn(self, command: list[str]) -> subprocess.Popen:
        child = subprocess.Popen(command)
        self.children.append(child)
        return child

    def wait(self) -> list[str]:
        """Block until a child stops; the command lines of those that failed."""
        while all(child.poll() is None for child in self.children):
            time.sleep(0.5)
        return [" ".join(c.args[:8]) for c in self.children if c.poll() not in (None, 0)]

    def stop(self, grace: float | None = 10) -> None:
        """SIGTERM to each child still running, then SIGKILL after `grace` seconds (None: wait
        as long as they take; a Celery worker finishes the tasks it is running first)."""
        for child in reversed(self.children):
            if child.poll() is None:
                child.terminate()
        deadline = None if grace is None else time.monotonic() + grace
        for child in self.children:
            try:
                child.wait(None if deadline is None else max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
