"""Thin Celery tasks: load by id, call a service. Messages carry ids only, never secrets."""

from celery import shared_task
from celery.signals import task_postrun, task_prerun

from videostudio.logs import current_job_id, job_id_argument

from . import services


@shared_task
def run_job(job_id: str) -> None:
    services.job_run(job_id=job_id)


@shared_task
def store_job(job_id: str) -> None:
    services.job_store(job_id=job_id)


@shared_task
def make_poster(job_id: str) -> None:
    services.job_make_poster(job_id=job_id)


@shared_task
def sweep() -> None:
    services.sweep()


@shared_task
def sync_catalog() -> None:
    services.catalog_sync()


# While a task runs, every line logged names its job (videostudio/logs.py), Celery's own
# "Task ... succeeded/failed" lines included: Celery sends these signals around them, in the
# thread that runs the task. Each task sets the job (None for sweep and sync_catalog) and puts
# back what was there, so a thread of the generate worker's pool never carries one job's id into
# the next task it runs.
_job_tokens = {}


@task_prerun.connect
def _enter_job(task_id, task, args, kwargs, **_):
    _job_tokens[task_id] = current_job_id.set(job_id_argument(task.run, args, kwargs))


@task_postrun.connect
def _leave_job(task_id, **_):
    token = _job_tokens.pop(task_id, None)
    if token is not None:
        current_job_id.reset(token)
