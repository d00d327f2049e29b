"""A slower machine, on this one: a CPU quota (Linux cgroups) over the bench, PostgreSQL and Redis.

A goal met on one 2-core machine may be missed on a slower one. `limited_cpu(0.8)` gives this
process (and every process it starts after), PostgreSQL and Redis 0.8 cores' worth of CPU time
between them, enforced every 10 ms: on 2 cores, each CPU-second costs them 2.5 times as long, and
the CPU priorities within the group (the poster worker's nice 10, the web server's nice 5) still
hold. It is an approximation: every core's cache and clock stay as they are, and the quota is
paid out in 10-ms slices, so work can wait up to one slice.

Needs root and a writable cgroup file system (v2, or v1's `cpu` controller). Every process is
moved back to the group it came from at the end, PostgreSQL's backends forked meanwhile included.
Where each came from is also written to a file, so that if a run is killed before it can move
them back (SIGKILL), the next run does it first instead of leaving PostgreSQL and Redis limited.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

PERIOD_US = 10_000
GROUP_NAME = "videostudio-bench"
SERVICES = ("postgres", "redis-server")
HOMES_FILE = Path(__file__).resolve().parent.parent / "var" / "cpu-limit-homes.json"


class CpuLimitError(Exception):
    pass


@contextlib.contextmanager
def limited_cpu(cores: float):
    """Run the body with this process, PostgreSQL and Redis under a quota of `cores` CPUs."""
    import psutil

    root, v2 = _cpu_hierarchy()
    group = root / GROUP_NAME
    if HOMES_FILE.exists():  # a run killed before it could move them back
        _send_home(root, group, json.loads(HOMES_FILE.read_text()))
    try:
        group.mkdir(exist_ok=True)
        quota = max(1000, round(cores * PERIOD_US))
        if v2:
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}\n")
        else:
            (group / "cpu.cfs_period_us").write_text(f"{PERIOD_US}\n")
            (group / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    except OSError as exc:
        raise CpuLimitError(f"cannot make a CPU-limited cgroup under {root}: {exc}") from exc

    services = [p for p in psutil.process_iter(["name"]) if p.info["name"] in SERVICES]
    homes = {"bench": _group_of(os.getpid(), v2)}
    for proc in services:
        homes.setdefault(proc.info["name"], _group_of(proc.pid, v2))
    HOMES_FILE.parent.mkdir(parents=True, exist_ok=True)
    HOMES_FILE.write_text(json.dumps(homes))
    try:
        try:
            for pid in [os.getpid(), *(p.pid for p in services)]:
                _move(group, pid)
        except OSError as exc:
            raise CpuLimitError(f"cannot move processes into {group}: {exc}") from exc
        yield
    finally:
        _send_home(root, group, homes)


def _send_home(root: Path, group: Path, homes: dict[str, str]) -> None:
    """Every process in the limited group back to where it came from; then remove the group."""
    for pid in _members(group):
        home = homes.get(_name_of(pid), homes["bench"])
        with contextlib.suppress(OSError):  # it may have exited meanwhile
            _move(root / home.lstrip("/"), pid)
    with contextlib.suppress(OSError):
        group.rmdir()
    HOMES_FILE.unlink(missing_ok=True)


def _cpu_hierarchy() -> tuple[Path, bool]:
    """The cgroup directory whose groups can limit CPU time, and whether it is cgroup v2."""
    unified = Path("/sys/fs/cgroup")
    if (unified / "cgroup.controllers").exists():
        if "cpu" not in (unified / "cgroup.subtree_control").read_text().split():
            raise CpuLimitError("cgroup v2 without the cpu controller enabled at its root")
        return unified, True
    v1 = unified / "cpu"
    if (v1 / "cpu.cfs_quota_us").exists():
        return v1, False
    raise CpuLimitError("no cgroup CPU controller found under /sys/fs/cgroup")


def _group_of(pid: int, v2: bool) -> str:
    """The cgroup `pid` is in, as a path from the hierarchy's root."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (v2 and controllers == "") or (not v2 and "cpu" in controllers.split(",")):
            return path
    return "/"


def _members(group: Path) -> list[int]:
    try:
        return [int(pid) for pid in (group / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def _name_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _move(group: Path, pid: int) -> None:
    (group / "cgroup.procs").write_text(f"{pid}\n")
