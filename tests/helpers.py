"""Small helpers shared by the tests."""

import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from jobs import services
from jobs.models import CostEntry, Job

ROOT = Path(__file__).resolve().parents[1]
# The variables a settings test starts without, whatever the developer's or CI's shell holds:
# each test then sets what it is about.
SETTINGS_PREFIXES = ("DJANGO_", "IMAGEROUTER_", "DATABASE_", "STORAGE_", "S3_", "MEDIA_", "LOG_")


def run_with_settings(
    code: str = "import django; django.setup()", *, check: bool = False, **env
) -> subprocess.CompletedProcess:
    """`code` run by a fresh Python whose studio settings come from `env` and the defaults alone
    (settings are read once, at import, so a test of them needs a process of its own)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "videostudio.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def run_job_now(job_id) -> None:
    """A job's worker steps, run in this process: generate, store a URL result, make the poster."""
    services.job_run(job_id=job_id)
    services.job_store(job_id=job_id)
    services.job_make_poster(job_id=job_id)


def wait_for(predicate, *, timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def make_entry(user, model, cost, when, *, outcome="charged", possible=None, **job_fields):
    """A finished job and its ledger entry, written directly with known amounts."""
    failed = outcome != CostEntry.Outcome.CHARGED
    job = Job.objects.create(
        owner=user,
        model=model,
        seconds=job_fields.get("seconds", "5"),
        size=job_fields.get("size", "1280x720"),
        status=Job.Status.FAILED if failed else Job.Status.SUCCEEDED,
        outcome_unknown=outcome == CostEntry.Outcome.UNKNOWN,
        cost=Decimal(cost),
        possible_cost=possible,
        latency_ms=job_fields.get("latency_ms", 1500),
    )
    return CostEntry.objects.create(
        job=job,
        user=user,
        model=model,
        outcome=outcome,
        cost=Decimal(cost),
        possible_cost=possible,
        reconciliation="pending" if outcome == CostEntry.Outcome.UNKNOWN else "",
        created_at=when,
    )
