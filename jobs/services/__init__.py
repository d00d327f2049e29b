"""Every write and every status change. Each transition is one conditional UPDATE that names the
status it expects, and acts only if it changed a row."""

from .account_deletion import AccountDeletionRefused, account_delete, account_deletion_refusal
from .alerts import (
    alert_preferences_save,
    budget_notices_email,
    job_alert_ended,
    staff_unknown_summary_send,
    weekly_digests_send,
)
from .audit import audit_record
from .budgets import (
    BudgetLimitError,
    OverBudgetError,
    budget_delete,
    budget_for,
    budget_reserve,
    budget_set,
    estimate_for,
    notices_record,
)
from .catalog import catalog_sync, model_visibility_set
from .files import file_deletions_retry, job_files_delete
from .groups import (
    JobSpec,
    group_create_once,
    group_keep_one,
    group_share_create,
    group_share_revoke,
    job_group_create,
)
from .idempotency import (
    SubmitKeyReusedError,
    job_create_once,
    request_fingerprint,
    submitted_job,
)
from .identity import SignInRefused, identity_sign_in, memberships_sync_from_groups
from .ledger import ledger_reconcile, ledger_record
from .lifecycle import job_cancel, job_create, job_delete, job_retry
from .limits import (
    ChargeRefusedError,
    GroupSizeError,
    ModelUnavailableError,
    StorageQuotaError,
    SubmitRateLimitedError,
    SubmitRefusedError,
    TooManyActiveJobsError,
)
from .mail import email_queue, email_send, email_send_again, emails_resend_due
from .provider_keys import (
    ProviderKeyUnavailableError,
    provider_key_for_job,
    provider_key_retire,
    provider_keys_renew,
)
from .queue import job_claim_next, queue_round_next
from .retention import expiry_warnings_send, job_star_set, job_storage_measure, jobs_expire
from .running import job_make_poster, job_run, job_run_next, job_store
from .sharing import NotShareableError, share_create, share_revoke
from .sweeper import sweep
from .teams import (
    TeamError,
    default_team_set,
    membership_remove,
    membership_set,
    team_create,
    team_delete,
    team_groups_set,
    team_models_set,
    team_rename,
    team_storage_set,
)
from .webhooks import delivery_resend, delivery_send

__all__ = [
    "AccountDeletionRefused",
    "BudgetLimitError",
    "ChargeRefusedError",
    "GroupSizeError",
    "JobSpec",
    "ModelUnavailableError",
    "NotShareableError",
    "OverBudgetError",
    "ProviderKeyUnavailableError",
    "SignInRefused",
    "StorageQuotaError",
    "SubmitKeyReusedError",
    "SubmitRateLimitedError",
    "SubmitRefusedError",
    "TeamError",
    "TooManyActiveJobsError",
    "account_delete",
    "account_deletion_refusal",
    "alert_preferences_save",
    "audit_record",
    "budget_delete",
    "budget_for",
    "budget_notices_email",
    "budget_reserve",
    "budget_set",
    "catalog_sync",
    "default_team_set",
    "delivery_resend",
    "delivery_send",
    "email_queue",
    "email_send",
    "email_send_again",
    "emails_resend_due",
    "estimate_for",
    "expiry_warnings_send",
    "file_deletions_retry",
    "group_create_once",
    "group_keep_one",
    "group_share_create",
    "group_share_revoke",
    "identity_sign_in",
    "job_alert_ended",
    "job_cancel",
    "job_claim_next",
    "job_create",
    "job_create_once",
    "job_delete",
    "job_files_delete",
    "job_group_create",
    "job_make_poster",
    "job_retry",
    "job_run",
    "job_run_next",
    "job_star_set",
    "job_storage_measure",
    "job_store",
    "jobs_expire",
    "ledger_reconcile",
    "ledger_record",
    "membership_remove",
    "membership_set",
    "memberships_sync_from_groups",
    "model_visibility_set",
    "notices_record",
    "provider_key_for_job",
    "provider_key_retire",
    "provider_keys_renew",
    "queue_round_next",
    "request_fingerprint",
    "share_create",
    "share_revoke",
    "staff_unknown_summary_send",
    "submitted_job",
    "sweep",
    "team_create",
    "team_delete",
    "team_groups_set",
    "team_models_set",
    "team_rename",
    "team_storage_set",
    "weekly_digests_send",
]
