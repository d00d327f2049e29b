"""Thin Celery tasks: load by id, call a service. Messages carry ids only, never secrets.
The job a task is about names its log lines (jobs/logcontext.py)."""

from celery import shared_task

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
