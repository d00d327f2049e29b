"""Every bench in bench/ still runs: each one's `--tiny` mode, as a subprocess with this venv's
Python, must exit 0 and print a real result. So a schema change that breaks a bench's seed, or a
settings change that stops its workers, fails here and not months later on a benchmark day.

The tiny modes need the local PostgreSQL server (127.0.0.1:5432, user postgres) as the benches
do (every machine of ours and CI's has it: without it these fail, they are never skipped), and
each works in a database and a Redis database of its own (bench/README.md), never this
suite's. All eight take about 90 to 150 s on 2 cores.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 240  # seconds for one tiny run: a hang fails the test instead of the whole job

# bench, and what its output must show: the table it prints and the sign the run did its work.
BENCHES = {
    "budgets": [r"seeded in .*2,000 ledger entries", r"job_create, 20 racing +20 +20 ",
                r"20 submits a second for 2 s", r"\nall +40 +\d+ +\d+ ",
                r"no level over its limit, roll-up equals the ledger, no errors"],
    "gallery": [r"seeding 100 users and 5,000 jobs", r"\nfirst page +\d+ ",
                r"\nsearch: axolotl \(rare word\) +\d+ ",
                r"every page answered 200; the rare search found its job"],
    "fairqueue": [r"the \d+ fair claims went to \d+ different people: one turn each",
                  r"single job: batch jobs started first +[01]\b", r"all checks passed"],
    "inflight": [r"=== threads -c 8: 4 jobs from 2 people", r"threads -c 8: 4 of 4 jobs succeeded",
                 r"posters made / jobs succeeded.*4 / 4"],
    "memory": [r"\| url +\| +2\.0 \| +2\.0 \| yes", r"\| b64_json +\| 2\.0 +\| +2\.0 \| yes",
               r"Posters made: 4 of 4", r"stored files intact, posters made: yes"],
    "polling": [r"\| status poll, version current: 204 \|.*204 100%",
                r"\| same, a teammate's team job: 204 +\|.*204 100%",
                r"20 watchers polling every 2 s", r"all answered 200/204/286, no errors"],
    "review": [r"seeding 20 users and 2,000 jobs", r"2,000 ledger entries",
               r"\nreview +month \d{4}-\d\d ", r"\nreconciliation +month"],
    "scaleout": [r"\| jobs SUCCEEDED +\| 6 / 6 +\| ok", r"\| both hosts ran generations +\| \d \+ \d",
                 r"all checks passed"],
}  # fmt: skip


@pytest.mark.parametrize("bench", BENCHES)
def test_tiny_mode_runs(bench):
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, str(REPO_ROOT / "bench" / f"{bench}.py"), "--tiny"],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"bench/{bench}.py --tiny still running after {TIMEOUT} s:\n{exc.stdout}")
    output = done.stdout + done.stderr
    print(f"bench/{bench}.py --tiny: exit {done.returncode} in {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, (
        f"bench/{bench}.py --tiny exited {done.returncode}:\n{output[-6000:]}"
    )
    missing = [pattern for pattern in BENCHES[bench] if not re.search(pattern, done.stdout)]
    assert not missing, f"bench/{bench}.py --tiny printed no {missing}:\n{done.stdout[-6000:]}"
