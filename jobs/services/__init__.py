"""Every write and every status change. Each transition is one conditional UPDATE that names the
status it expects, and acts only if it changed a row."""

from .budgets import OverBudgetError, budget_for, budget_set, estimate_for
from .catalog import catalog_sync
from .idempotency import (
    SubmitKeyReusedError,
    job_create_once,
    request_fingerprint,
    submitted_job,
)
from .ledger import ledger_reconcile, ledger_record
from .lifecycle import job_cancel, job_create, job_delete, job_retry
from .limits import (
    ModelUnavailableError,
    SubmitRateLimitedError,
    SubmitRefusedError,
    TooManyActiveJobsError,
)
from .running import job_make_poster, job_run, job_store
from .sharing import NotShareableError, share_create, share_revoke
from .sweeper import sweep

__all__ = [
    "ModelUnavailableError",
    "NotShareableError",
    "OverBudgetError",
    "SubmitKeyReusedError",
    "SubmitRateLimitedError",
    "SubmitRefusedError",
    "TooManyActiveJobsError",
    "budget_for",
    "budget_set",
    "catalog_sync",
    "estimate_for",
    "job_cancel",
    "job_create",
    "job_create_once",
    "job_delete",
    "job_make_poster",
    "job_retry",
    "job_run",
    "job_store",
    "ledger_reconcile",
    "ledger_record",
    "request_fingerprint",
    "share_create",
    "share_revoke",
    "submitted_job",
    "sweep",
]
