"""Thin Celery tasks: load by id, call a service. Messages carry ids only, never secrets.
The job a task is about names its log lines (jobs/logcontext.py)."""

from celery import shared_task

from . import services


# A generate message names no job: a slot runs the fairest queued one (services/queue.py). The
# job_id of a message sent by an older version is accepted and means the same.
@shared_task
def run_job(job_id: str | None = None) -> None:
    services.job_run_next()


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
def renew_provider_keys() -> None:
    services.provider_keys_renew()


@shared_task
def sync_catalog() -> None:
    services.catalog_sync()


@shared_task
def send_email(email_id: str) -> None:
    services.email_send(email_id=email_id)


@shared_task
def deliver_webhook(delivery_id: str) -> None:
    services.delivery_send(delivery_id=delivery_id)


@shared_task
def send_unknown_summary() -> None:
    services.staff_unknown_summary_send()


@shared_task
def send_weekly_digests() -> None:
    services.weekly_digests_send()


@shared_task
def send_expiry_warnings() -> None:
    services.expiry_warnings_send()
