"""Every write and every status change. Each transition is one conditional UPDATE that names the
status it expects, and acts only if it changed a row."""

from .catalog import catalog_sync
from .lifecycle import job_cancel, job_create, job_delete, job_retry
from .running import job_run, job_store
from .sweeper import sweep

__all__ = [
    "catalog_sync",
    "job_cancel",
    "job_create",
    "job_delete",
    "job_retry",
    "job_run",
    "job_store",
    "sweep",
]
