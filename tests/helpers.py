"""Small helpers shared by the tests."""

import time

from jobs import services


def run_job_now(job_id) -> None:
    """A job's two worker steps, run in this process: generate, then store a URL result."""
    services.job_run(job_id=job_id)
    services.job_store(job_id=job_id)


def wait_for(predicate, *, timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
