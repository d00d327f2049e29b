"""Run the simulator in a child process for tests, and drive its `/_sim` controls.

    with SimulatorProcess(env={"SIM_LATENCY": "0"}) as sim:
        sim.inject({"kind": "drop", "after_seconds": 0.2})
        ...  # point the client at sim.url

The child's stderr (one line per request) goes to this process's stderr, so pytest shows it
next to a failing test. Only the standard library is used, so any test suite can import this.
"""

import json
import os
import queue
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_PREFIX = "Simulator listening on "
START_TIMEOUT = 15

# Talk to the child directly, whatever proxy the environment names.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SimulatorProcess:
    def __init__(self, *, env: dict[str, str] | None = None):
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> "SimulatorProcess":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "simulator", "--port", "0"],
            cwd=REPO_ROOT,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=None,  # inherited: the request log lands in ours
            text=True,
        )
        lines: queue.Queue = queue.Queue()
        # Keep reading stdout for the child's whole life, so a full pipe can never block it.
        threading.Thread(target=self._drain_stdout, args=(lines,), daemon=True).start()
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"the simulator did not start within {START_TIMEOUT} s") from None
        if not line.startswith(READY_PREFIX):
            code = self.process.poll()
            self.stop()
            raise RuntimeError(f"the simulator failed to start (exit code {code}): {line!r}")
        self.url = line.removeprefix(READY_PREFIX).strip()
        return self

    def _drain_stdout(self, lines: queue.Queue):
        for line in self.process.stdout:
            lines.put(line)
        lines.put("")  # end of output: the child has exited

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "SimulatorProcess":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def inject(self, *faults: dict) -> None:
        self._call("POST", "/_sim/faults", {"faults": list(faults)})

    def configure(self, **config) -> None:
        self._call("POST", "/_sim/config", config)

    def reset(self) -> None:
        self._call("POST", "/_sim/reset", {})

    def stats(self) -> dict:
        return self._call("GET", "/_sim/stats")

    def _call(self, method: str, path: str, data: dict | None = None) -> dict:
        body = json.dumps(data).encode() if data is not None else None
        # The URL is the child's own loopback address, never one from outside.
        request = urllib.request.Request(  # noqa: S310
            self.url + path, data=body, method=method, headers={"Content-Type": "application/json"}
        )
        with _opener.open(request, timeout=10) as response:
            return json.load(response)
