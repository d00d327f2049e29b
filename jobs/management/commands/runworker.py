"""One worker host: a Celery worker for each queue (jobs/workers.py), stopped together.

This is docker compose's `worker` service: `docker compose up --scale worker=N` adds hosts. On
SIGTERM (docker stop) each worker finishes the tasks it is running before it exits; a
generation can take minutes, so give the container a long stop_grace_period.
"""

import signal
import sys

from django.core.management.base import BaseCommand, CommandError

from jobs.workers import ProcessGroup, worker_commands


class Command(BaseCommand):
    help = "Run the generate, store and poster Celery workers of one host."

    def add_arguments(self, parser):
        parser.add_argument(
            "--node",
            default="%h",
            help="The part of each worker's name after the @ (default: the host name).",
        )

    def handle(self, *args, node, **options):
        group = ProcessGroup()
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            for command in worker_commands(node).values():
                group.spawn(command)
            failed = group.wait()
            if failed:
                raise CommandError(f"A worker stopped: {', '.join(failed)}")
        except KeyboardInterrupt:
            pass
        finally:
            group.stop(grace=None)
