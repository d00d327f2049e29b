"""Event metrics: what the processes count as it happens (Prometheus counters and histograms).

The figures the database already holds (jobs by state, the oldest queued job, budgets left,
emails and webhooks waiting) are not counted here: videostudio/metrics.py reads them at scrape
time. These are the events only a process sees: how long a provider call took, how it ended,
what was spent, when a job ended.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn, `manage.py runworker`, `make run`), every process
writes its values to its own files there and the scrape adds them up; README "Metrics" says how
the directory is set up. Every recording is after commit, so a rolled-back transaction counts
nothing.

Labels are bounded: `model` comes from the catalog (a job's model was checked against it at
submit), `team` is a team's UUID (its name may change; `videostudio_team_info` maps one to
the other) or "personal", `outcome` and `state` are the few values below.
"""

from datetime import datetime

from django.db import transaction
from prometheus_client import Counter, Histogram

PERSONAL = "personal"

# The five ways a provider call can end, named for what happened to the money.
SUCCESS = "success"
REFUSED = "refused"  # 4xx, 5xx or 200 with an error body: refunded (insufficient credit too)
RATE_LIMITED = "rate_limited"  # 429: nothing done, retried later
UNREACHABLE = "unreachable"  # connect error: nothing done, retried later
OUTCOME_UNKNOWN = "outcome_unknown"  # timeout, dropped connection, worker lost: maybe charged
OUTCOMES = (SUCCESS, REFUSED, RATE_LIMITED, UNREACHABLE, OUTCOME_UNKNOWN)

# Real models answer in 20 s to several minutes, the test model and the simulator in under one.
PROVIDER_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 90, 120, 180, 300, 600, 900, 1200)
# The studio's own share: a queue wait of milliseconds when workers are free, minutes when not.
OVERHEAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)

provider_calls = Counter(
    "videostudio_provider_calls",
    "Generation calls to the provider, by model and how they ended.",
    ["model", "outcome"],
)
provider_call_seconds = Histogram(
    "videostudio_provider_call_seconds",
    "Wall time of a successful generation call, from sending it to the whole answer read.",
    ["model"],
    buckets=PROVIDER_BUCKETS,
)
studio_overhead_seconds = Histogram(
    "videostudio_studio_overhead_seconds",
    "The studio's own time for a job that succeeded: from submit to the claim of the call "
    "that succeeded, plus from its answer to the stored video.",
    ["model"],
    buckets=OVERHEAD_BUCKETS,
)
spend = Counter(
    "videostudio_spend_usd",
    "USD recorded in the ledger, by model and where it was charged (a team's id or personal): "
    "the provider's cost of each call, and reconciled unknown outcomes.",
    ["model", "team"],
)
jobs_finished = Counter(
    "videostudio_jobs_finished",
    "Jobs that reached an end state (succeeded, failed, canceled).",
    ["state"],
)


def team_label(team_id) -> str:
    return str(team_id) if team_id is not None else PERSONAL


def provider_call_record(*, model: str, outcome: str, seconds: float | None = None) -> None:
    """One provider call's outcome, and its duration when it succeeded. Called by the worker
    right after the call, outside any transaction (the call holds none)."""
    provider_calls.labels(model=model, outcome=outcome).inc()
    if outcome == SUCCESS and seconds is not None:
        provider_call_seconds.labels(model=model).observe(seconds)


def spend_record(*, model: str, team_id, cost) -> None:
    """Money written to the ledger, counted once the transaction that wrote it commits."""
    if not cost:
        return
    amount = float(cost)  # Prometheus values are floats; the ledger keeps the exact Decimal
    transaction.on_commit(lambda: spend.labels(model=model, team=team_label(team_id)).inc(amount))


def job_finished_record(*, state: str) -> None:
    """A job reached an end state, counted once the transaction that moved it commits."""
    transaction.on_commit(lambda: jobs_finished.labels(state=state).inc())


def job_succeeded_record(
    *, model: str, created_at: datetime, started_at: datetime | None, answered_at: datetime | None,
    finished_at: datetime,
) -> None:  # fmt: skip
    """A success's studio overhead: its wait for the claim of the call that succeeded (backoffs
    after a 429 included) plus the time from the provider's answer to the stored video."""
    job_finished_record(state="succeeded")
    if started_at is None or answered_at is None:
        return
    overhead = (started_at - created_at) + (finished_at - answered_at)
    seconds = max(0.0, overhead.total_seconds())
    transaction.on_commit(lambda: studio_overhead_seconds.labels(model=model).observe(seconds))
