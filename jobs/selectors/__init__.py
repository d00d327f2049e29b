"""Every read, by topic, as jobs/services/ has every write. Anything that returns jobs is scoped
to the person asking."""

from .budgets import (
    MICRODOLLAR,
    BudgetStatus,
    budget_status_for_user,
    holds_for_user,
    month_spend_for_user,
    month_start,
)
from .catalog import catalog_models
from .jobs import (
    LATENCY_SAMPLE,
    QueuePosition,
    TypicalWait,
    job_get_for_owner,
    job_get_for_user,
    job_models_for_user,
    job_search_for_user,
    jobs_selected_by_owner,
    queue_position,
    typical_wait,
)
from .review import (
    ledger_entries_for_review,
    ledger_for_period,
    ledger_rows_for_export,
    live_holds_total,
    reconciliation_totals,
    spend_by_day_and_model,
    spend_by_user,
    spend_totals,
    unknown_outcomes,
    usernames_by_id,
)
from .sharing import job_get_shared
from .spending import (
    SPEND_FIGURES,
    daily_spend,
    months_back,
    spend_total_for_user,
    spending_by_month_for_user,
)
from .tokens import api_token_for_key, api_tokens_for_user

__all__ = [
    "LATENCY_SAMPLE",
    "MICRODOLLAR",
    "SPEND_FIGURES",
    "BudgetStatus",
    "QueuePosition",
    "TypicalWait",
    "api_token_for_key",
    "api_tokens_for_user",
    "budget_status_for_user",
    "catalog_models",
    "daily_spend",
    "holds_for_user",
    "job_get_for_owner",
    "job_get_for_user",
    "job_get_shared",
    "job_models_for_user",
    "job_search_for_user",
    "jobs_selected_by_owner",
    "ledger_entries_for_review",
    "ledger_for_period",
    "ledger_rows_for_export",
    "live_holds_total",
    "month_spend_for_user",
    "month_start",
    "months_back",
    "queue_position",
    "reconciliation_totals",
    "spend_by_day_and_model",
    "spend_by_user",
    "spend_total_for_user",
    "spend_totals",
    "spending_by_month_for_user",
    "typical_wait",
    "unknown_outcomes",
    "usernames_by_id",
]
