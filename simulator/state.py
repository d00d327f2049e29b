"""Everything the simulator remembers between requests: settings, credits, faults and counters.

One lock guards it all. Requests run on many threads, and the money rules (reserve the maximum,
settle or refund, never twice) are only true if each step is atomic.
"""

import dataclasses
import hashlib
import os
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .catalog import units_to_usd, usd_to_units

FAULT_KINDS = {
    "rate_limit",
    "insufficient_credits",
    "http_error",
    "error_after",
    "drop",
    "slow",
    "malformed",
    "download_fail",
    "large_result",
}


def parse_latency(text: str) -> dict[str, float]:
    """`2` or `default=2,ir/test-video=0.2` -> {"default": 2.0, "ir/test-video": 0.2}."""
    latency = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.rpartition("=")
        latency[name.strip() if sep else "default"] = float(value)
    return latency


@dataclass
class Config:
    """The simulator's settings. `/_sim/config` changes a copy; `/_sim/reset` returns to this."""

    latency: dict[str, float] = field(default_factory=lambda: {"default": 2.0})
    keepalive_interval: float = 3.0
    credits: str = "100"
    storage_dir: str | None = None  # None: a temporary directory, removed at exit

    @classmethod
    def from_env(cls, environ=os.environ) -> "Config":
        config = cls(storage_dir=environ.get("SIM_STORAGE_DIR") or None)
        if text := environ.get("SIM_LATENCY"):
            config.latency.update(parse_latency(text))
        if text := environ.get("SIM_KEEPALIVE_INTERVAL"):
            config.keepalive_interval = float(text)
        config.credits = environ.get("SIM_CREDITS", config.credits)
        return config

    def latency_for(self, model: str) -> float:
        return self.latency.get(model, self.latency.get("default", 0.0))


@dataclass
class KeyUsage:
    api_key_id: str
    api_key_name: str
    created_at: str
    usage_units: int = 0
    total_requests: int = 0


class FaultError(ValueError):
    pass


def check_fault(fault) -> dict:
    if not isinstance(fault, dict) or fault.get("kind") not in FAULT_KINDS:
        raise FaultError(f"unknown fault {fault!r}; kinds are {', '.join(sorted(FAULT_KINDS))}")
    match = fault.get("match", {})
    if not isinstance(match, dict) or set(match) - {"prompt", "model"}:
        raise FaultError("'match' may only hold 'prompt' and 'model'")
    # Refuse a bad number now, rather than fail obscurely in the request that meets the fault.
    for name in ("status", "retry_after", "seconds", "after_seconds", "times", "bytes"):
        value = fault.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise FaultError(f"'{name}' must be a number, 0 or more")
    if "status" in fault and not 200 <= fault["status"] <= 599:
        raise FaultError("'status' must be an HTTP status from 200 to 599")
    return fault


class SimulatorState:
    def __init__(self, config: Config):
        self.initial = config
        self.lock = threading.Lock()
        # Generations still running at a reset belong to the old epoch; when they finish they
        # must not charge the fresh balance or count in the fresh stats.
        self.epoch = 0
        self.reset()

    def reset(self):
        with self.lock:
            self.epoch += 1
            self.settings = dataclasses.replace(self.initial, latency=dict(self.initial.latency))
            self.deposits_units = usd_to_units(self.initial.credits)
            self.balance_units = self.deposits_units
            self.keys: dict[str, KeyUsage] = {}
            self.faults: list[dict] = []
            self.download_faults: dict[str, dict] = {}
            self.counters = dict.fromkeys(
                ["generation_requests", "paid_calls", "refunded", "rejected", "downloads"], 0
            )
            self.charged_units = 0

    # Settings -----------------------------------------------------------------------------

    def configure(self, config: dict):
        unknown = set(config) - {"latency", "keepalive_interval", "credits"}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        with self.lock:
            if "latency" in config:
                latency = config["latency"]
                if isinstance(latency, int | float | str):
                    latency = {"default": latency}
                self.settings.latency.update({k: float(v) for k, v in latency.items()})
            if "keepalive_interval" in config:
                self.settings.keepalive_interval = float(config["keepalive_interval"])
            if "credits" in config:
                # Keep the provider's identity: usage = deposits - remaining.
                used = self.deposits_units - self.balance_units
                self.balance_units = usd_to_units(config["credits"])
                self.deposits_units = self.balance_units + used

    def latency_for(self, model: str) -> float:
        with self.lock:
            return self.settings.latency_for(model)

    def keepalive_interval(self) -> float:
        with self.lock:
            return self.settings.keepalive_interval

    # Counters -----------------------------------------------------------------------------

    def count(self, name: str):
        with self.lock:
            self.counters[name] += 1

    def stats(self) -> dict:
        with self.lock:
            return {
                **self.counters,
                "charged_usd": str(units_to_usd(self.charged_units)),
                "pending_faults": len(self.faults),
            }

    # Faults -------------------------------------------------------------------------------

    def add_faults(self, faults: list[dict]):
        checked = [check_fault(f) for f in faults]
        with self.lock:
            self.faults.extend(checked)

    def take_fault(self, prompt: str, model: str) -> dict | None:
        """The first queued fault that applies to this request; faults whose `match` this
        request doesn't meet stay queued for a later one."""
        with self.lock:
            for index, fault in enumerate(self.faults):
                match = fault.get("match", {})
                if match.get("prompt", "") in prompt and match.get("model", model) == model:
                    return self.faults.pop(index)
        return None

    def fail_downloads(self, epoch: int, video_id: str, fault: dict):
        with self.lock:
            if epoch != self.epoch:
                return
            self.download_faults[video_id] = {
                "times": int(fault.get("times", 1)),
                "mode": fault.get("mode", "error"),
            }

    def take_download_fault(self, video_id: str) -> str | None:
        """The failure mode for this download, or None when it should be served normally."""
        with self.lock:
            fault = self.download_faults.get(video_id)
            if not fault or fault["times"] <= 0:
                return None
            fault["times"] -= 1
            return fault["mode"]

    # Credits ------------------------------------------------------------------------------

    def _key(self, api_key: str) -> KeyUsage:
        if api_key not in self.keys:
            digest = hashlib.sha256(api_key.encode()).hexdigest()
            self.keys[api_key] = KeyUsage(
                api_key_id=str(uuid.UUID(digest[:32])),
                # Never echo the key itself; its last four characters are enough to tell keys apart.
                api_key_name=f"Simulated key ending {api_key[-4:]}",
                created_at=f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.000Z}",
            )
        return self.keys[api_key]

    def reserve(self, api_key: str, units: int) -> int | None:
        """Take the maximum price off the balance before any work, as the provider does.
        Return the epoch to settle or refund in, or None when the balance is too low."""
        with self.lock:
            if units and self.balance_units < units:
                return None
            self.balance_units -= units
            usage = self._key(api_key)
            usage.usage_units += units
            usage.total_requests += 1
            return self.epoch

    def settle(self, epoch: int, api_key: str, reserved: int, price: int):
        """Charge the real price: give back the part of the reservation it didn't use."""
        with self.lock:
            if epoch != self.epoch:
                return
            self.balance_units += reserved - price
            self._key(api_key).usage_units += price - reserved
            self.charged_units += price
            self.counters["paid_calls"] += 1

    def refund(self, epoch: int, api_key: str, reserved: int):
        with self.lock:
            if epoch != self.epoch:
                return
            self.balance_units += reserved
            self._key(api_key).usage_units -= reserved
            self.counters["refunded"] += 1

    def credits(self, by_api_key: bool) -> dict:
        with self.lock:
            body = {
                "remaining_credits": str(units_to_usd(self.balance_units)),
                "credit_usage": str(units_to_usd(self.deposits_units - self.balance_units)),
                "total_deposits": str(units_to_usd(self.deposits_units)),
            }
            if by_api_key:
                body["usage_by_api_key"] = [
                    {
                        "api_key_id": k.api_key_id,
                        "api_key_name": k.api_key_name,
                        "credit_usage": str(units_to_usd(k.usage_units)),
                        "total_requests": k.total_requests,
                        "created_at": k.created_at,
                        "is_active": True,
                    }
                    for k in self.keys.values()
                ]
            return body
