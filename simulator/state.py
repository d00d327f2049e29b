"""Everything the simulator remembers between requests: settings, credits, faults and counters.

One lock guards it all. Requests run on many threads, and the money rules (reserve the maximum,
settle or refund, never twice) are only true if each step is atomic.
"""

import dataclasses
import hashlib
import os
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

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
    # The account's management keys: they may mint normal keys (POST /v1/api-keys) and nothing
    # else. Any other non-empty key is the account's own normal key, as before.
    management_keys: tuple[str, ...] = ()
    # Seconds added to the real clock: tests move time to cross a spend window or an expiry.
    clock_offset: float = 0.0

    @classmethod
    def from_env(cls, environ=os.environ) -> "Config":
        config = cls(storage_dir=environ.get("SIM_STORAGE_DIR") or None)
        if text := environ.get("SIM_LATENCY"):
            config.latency.update(parse_latency(text))
        if text := environ.get("SIM_KEEPALIVE_INTERVAL"):
            config.keepalive_interval = float(text)
        config.credits = environ.get("SIM_CREDITS", config.credits)
        if text := environ.get("SIM_MANAGEMENT_KEYS"):
            config.management_keys = tuple(k.strip() for k in text.split(",") if k.strip())
        return config

    def latency_for(self, model: str) -> float:
        return self.latency.get(model, self.latency.get("default", 0.0))


PERIODS = ("day", "week", "month")


def window_start(period: str | None, now: datetime) -> datetime | None:
    """The start of the UTC window holding `now`: 00:00 today, Monday of the ISO week, or the
    1st of the month. None (no period) is a lifetime window."""
    if period is None:
        return None
    day = now.astimezone(UTC).date()
    if period == "week":
        day -= timedelta(days=day.weekday())
    elif period == "month":
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def stamp(moment: datetime | None) -> str | None:
    """A UTC timestamp as the provider writes it: 2026-05-01T00:00:00.000Z."""
    if moment is None:
        return None
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


@dataclass
class KeyUsage:
    api_key_id: str
    api_key_name: str
    created_at: str
    usage_units: int = 0
    total_requests: int = 0
    # Keys minted with a management key carry these; the account's own key has none of them.
    minted: bool = False
    spend_limit_units: int | None = None
    spend_limit_period: str | None = None
    expires_at: datetime | None = None
    # Usage by the UTC day its reservation was made, so a window's spend can be summed.
    usage_by_day: dict = field(default_factory=dict)

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def period_units(self, now: datetime) -> int:
        start = window_start(self.spend_limit_period, now)
        if start is None:
            return self.usage_units
        return sum(units for day, units in self.usage_by_day.items() if day >= start.date())

    def add(self, day: date, units: int):
        self.usage_units += units
        self.usage_by_day[day] = self.usage_by_day.get(day, 0) + units


@dataclass
class Reservation:
    """The price held for one generation: settled or refunded later, in the same epoch, on the
    day it was taken (a window's spend counts it on that day)."""

    epoch: int
    day: date


class SpendLimitReached(Exception):
    """The key has spent its limit in the current window. The message is the provider's."""


class KeyRefused(Exception):
    """401: a management key used for anything but minting, or an expired key."""


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
                [
                    "generation_requests",
                    "paid_calls",
                    "refunded",
                    "rejected",
                    "downloads",
                    "keys_minted",
                ],
                0,
            )
            self.charged_units = 0

    # Settings -----------------------------------------------------------------------------

    def configure(self, config: dict):
        known = {"latency", "keepalive_interval", "credits", "management_keys", "now"}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        management_keys = config.get("management_keys", [])
        if not isinstance(management_keys, list) or not all(
            isinstance(k, str) and k for k in management_keys
        ):
            raise ValueError("'management_keys' must be a list of non-empty strings")
        offset = None
        if "now" in config:
            now = config["now"]
            if now is None:
                offset = 0.0
            else:
                moment = parse_timestamp(now)
                if moment is None:
                    raise ValueError("'now' must be an ISO 8601 timestamp or null")
                offset = (moment - datetime.now(UTC)).total_seconds()
        with self.lock:
            if "management_keys" in config:
                self.settings.management_keys = tuple(management_keys)
            if offset is not None:
                self.settings.clock_offset = offset
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

    def now(self) -> datetime:
        """The simulator's clock: the real one, moved by `/_sim/config {"now": ...}`."""
        return datetime.now(UTC) + timedelta(seconds=self.settings.clock_offset)

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

    # Keys ---------------------------------------------------------------------------------

    def is_management_key(self, api_key: str) -> bool:
        with self.lock:
            return api_key in self.settings.management_keys

    def check_key(self, api_key: str):
        """Raise KeyRefused for a key that may not generate or read credits: a management key,
        or a minted key past its expiry."""
        with self.lock:
            if api_key in self.settings.management_keys:
                raise KeyRefused("Management keys can only create API keys")
            usage = self.keys.get(api_key)
            if usage is not None and usage.expired(self.now()):
                raise KeyRefused("API key has expired")

    def mint(
        self,
        *,
        name: str,
        spend_limit_units: int | None,
        period: str | None,
        expires_at: datetime | None,
    ) -> tuple[str, KeyUsage]:
        """A new normal key of the account: its 64-character secret and its record."""
        secret = secrets.token_hex(32)
        with self.lock:
            usage = KeyUsage(
                api_key_id=str(uuid.uuid4()),
                api_key_name=name,
                created_at=stamp(self.now()),
                minted=True,
                spend_limit_units=spend_limit_units,
                spend_limit_period=period,
                expires_at=expires_at,
            )
            self.keys[secret] = usage
            self.counters["keys_minted"] += 1
            return secret, dataclasses.replace(usage)

    # Credits ------------------------------------------------------------------------------

    def _key(self, api_key: str) -> KeyUsage:
        if api_key not in self.keys:
            digest = hashlib.sha256(api_key.encode()).hexdigest()
            self.keys[api_key] = KeyUsage(
                api_key_id=str(uuid.UUID(digest[:32])),
                # Never echo the key itself; its last four characters are enough to tell keys apart.
                api_key_name=f"Simulated key ending {api_key[-4:]}",
                created_at=stamp(self.now()),
            )
        return self.keys[api_key]

    def reserve(self, api_key: str, units: int) -> Reservation | None:
        """Take the maximum price off the balance before any work, as the provider does.
        Return the reservation to settle or refund, or None when the balance is too low.
        Raise SpendLimitReached when the key has already spent its limit in this window: the
        provider blocks a key's requests once it has spent that much (reservations in flight
        count, as they do in its usage)."""
        with self.lock:
            now = self.now()
            usage = self._key(api_key)
            limit = usage.spend_limit_units
            if limit is not None and usage.period_units(now) >= limit:
                raise SpendLimitReached(_limit_message(usage, now))
            if units and self.balance_units < units:
                return None
            self.balance_units -= units
            usage.add(now.date(), units)
            usage.total_requests += 1
            return Reservation(self.epoch, now.date())

    def settle(self, reservation: Reservation, api_key: str, reserved: int, price: int):
        """Charge the real price: give back the part of the reservation it didn't use."""
        with self.lock:
            if reservation.epoch != self.epoch:
                return
            self.balance_units += reserved - price
            self._key(api_key).add(reservation.day, price - reserved)
            self.charged_units += price
            self.counters["paid_calls"] += 1

    def refund(self, reservation: Reservation, api_key: str, reserved: int):
        with self.lock:
            if reservation.epoch != self.epoch:
                return
            self.balance_units += reserved
            self._key(api_key).add(reservation.day, -reserved)
            self.counters["refunded"] += 1

    def credits(self, by_api_key: bool) -> dict:
        with self.lock:
            now = self.now()
            body = {
                "remaining_credits": str(units_to_usd(self.balance_units)),
                "credit_usage": str(units_to_usd(self.deposits_units - self.balance_units)),
                "total_deposits": str(units_to_usd(self.deposits_units)),
            }
            if by_api_key:
                body["usage_by_api_key"] = [_key_report(k, now) for k in self.keys.values()]
            return body


def _usd(units: int | None) -> str | None:
    return None if units is None else str(units_to_usd(units))


def _key_report(usage: KeyUsage, now: datetime) -> dict:
    """One key in GET /v1/credits?by_api_key=true, with the documented per-key fields."""
    return {
        "api_key_id": usage.api_key_id,
        "api_key_name": usage.api_key_name,
        "credit_usage": _usd(usage.usage_units),
        "total_requests": usage.total_requests,
        "created_at": usage.created_at,
        "is_active": not usage.expired(now),
        "spend_limit": _usd(usage.spend_limit_units),
        "spend_limit_period": usage.spend_limit_period,
        "period_spend": _usd(usage.period_units(now)),
        "period_start": stamp(window_start(usage.spend_limit_period, now)),
        "expires_at": stamp(usage.expires_at),
    }


PERIOD_WORDS = {"day": "a day", "week": "a week", "month": "a month", None: "in all"}


def _limit_message(usage: KeyUsage, now: datetime) -> str:
    limit = f"${units_to_usd(usage.spend_limit_units)} {PERIOD_WORDS[usage.spend_limit_period]}"
    start = window_start(usage.spend_limit_period, now)
    if start is None:
        return f"API key spend limit reached ({limit}). Create a new key to continue."
    if usage.spend_limit_period == "day":
        resets = start + timedelta(days=1)
    elif usage.spend_limit_period == "week":
        resets = start + timedelta(days=7)
    else:
        resets = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return f"API key spend limit reached ({limit}). It resets at {stamp(resets)}."


def parse_timestamp(value) -> datetime | None:
    """An ISO 8601 timestamp (a trailing Z allowed; no zone means UTC), or None if it isn't."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
