"""One worker host: a Celery worker for each queue (jobs/workers.py), stopped together.

This is docker compose's `worker` service: `docker compose up --scale worker=N` adds hosts. On
SIGTERM (docker stop) each worker finishes the tasks it is running before it exits; a
generation can take minutes, so give the container a long stop_grace_period.

Metrics (README, "Metrics"): the workers write their event metrics to PROMETHEUS_MULTIPROC_DIR,
which is emptied here before they start. With METRICS_WORKER_PORT set, this process serves them
at :PORT/metrics, for a worker host whose directory the web cannot read (another container or
machine).
"""

import signal
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from jobs.workers import ProcessGroup, worker_commands
from videostudio.metrics import worker_metrics_serve
from videostudio.metrics_dir import multiprocess_dir_reset


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
        directory = multiprocess_dir_reset()
        server = None
        if settings.METRICS_WORKER_PORT:
            if not directory:
                raise CommandError(
                    "METRICS_WORKER_PORT needs PROMETHEUS_MULTIPROC_DIR: the workers are "
                    "processes of their own, and write their metrics there."
                )
            server = worker_metrics_serve(settings.METRICS_WORKER_PORT)
            self.stdout.write(f"Worker metrics at :{settings.METRICS_WORKER_PORT}/metrics")
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
            if server is not None:
                server.shutdown()
