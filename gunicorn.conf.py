"""gunicorn reads this file from the working directory by default (the Dockerfile's /app, and
`gunicorn videostudio.wsgi` run from the checkout), so every way the studio is served with
gunicorn gets these hooks.

Prometheus' multi-process mode (README, "Metrics"): each gunicorn worker writes its values to
files in PROMETHEUS_MULTIPROC_DIR, and /metrics adds them up. The directory is emptied when the
master starts, before any worker exists, and a worker that exits has its live gauges removed.
"""

from prometheus_client import multiprocess

from videostudio.metrics_dir import multiprocess_dir, multiprocess_dir_reset


def on_starting(server):
    multiprocess_dir_reset()


def child_exit(server, worker):
    if multiprocess_dir():
        multiprocess.mark_process_dead(worker.pid)
