"""Reads about the provider keys the studio minted: the live key of a place, what a place has
spent in a window, and the ledger per key that reconciliation sets beside the provider's usage.
Staff-only figures (the admin's reconciliation) and the worker's own lookups: nothing here is
shown to a member."""

from datetime import date, datetime
from decimal import Decimal

from django.db.models import Count, Q, Sum

from jobs.models import Budget, CostEntry, ProviderKey, SpendDay

from .budgets import MICRODOLLAR
from .spending import PENDING


def live_provider_key(*, place: str, now: datetime) -> ProviderKey | None:
    """The place's key whose window holds `now` and that is not retired (providerkey_live_place
    index), the newest if a budget change left two."""
    return (
        ProviderKey.objects.filter(
            place=place, retired_at__isnull=True, window_start__lte=now, window_end__gt=now
        )
        .select_related("team", "user")
        .order_by("-window_start", "-created_at")
        .first()
    )


def place_budget(*, team=None, user=None) -> Budget | None:
    """The budget row a place's key follows: its team's, or the person's personal one."""
    if team is not None:
        return Budget.objects.filter(level=Budget.Level.TEAM, team=team).first()
    return Budget.objects.filter(level=Budget.Level.PERSONAL, user=user).first()


def place_settled_cost(*, place: str, first_day: date, last_day: date) -> Decimal:
    """What a place has been charged from `first_day` to `last_day` (UTC days), possible costs of
    unknown outcomes left out: the most that its budget could still let through is the limit
    less this (spendday_scope_day)."""
    total = SpendDay.objects.filter(scope=place, day__gte=first_day, day__lte=last_day).aggregate(
        total=Sum("cost")
    )["total"]
    return (total or Decimal(0)).quantize(MICRODOLLAR)


def ledger_on_provider_key(*, key: ProviderKey, since: datetime | None) -> dict:
    """The studio's ledger for the jobs that called with `key`, from `since` on (all of them
    with None): {"total", "count", "pending"} (cost_provider_key index)."""
    entries = CostEntry.objects.filter(provider_key=key)
    if since is not None:
        entries = entries.filter(created_at__gte=since)
    figures = entries.aggregate(
        total=Sum("cost"), count=Count("id"), pending=Sum("possible_cost", filter=PENDING)
    )
    return {
        "total": (figures["total"] or Decimal(0)).quantize(MICRODOLLAR),
        "count": figures["count"],
        "pending": (figures["pending"] or Decimal(0)).quantize(MICRODOLLAR),
    }


def ledger_by_provider_key(windows: dict) -> dict:
    """For reconciliation: {key id: {"total", "count", "pending", "window_total",
    "window_pending"}}, for each key id in `windows` ({key id: the start of the provider's
    current window for it, or None}), in one grouped query over the cost_provider_key index.
    "window_*" count only the entries from that start (all of them with None)."""
    if not windows:
        return {}
    sums = {}
    for position, (key_id, start) in enumerate(windows.items()):
        mine = Q(provider_key_id=key_id)
        in_window = mine & Q(created_at__gte=start) if start is not None else mine
        sums[f"t{position}"] = Sum("cost", filter=mine)
        sums[f"n{position}"] = Count("id", filter=mine)
        sums[f"p{position}"] = Sum("possible_cost", filter=mine & PENDING)
        sums[f"wt{position}"] = Sum("cost", filter=in_window)
        sums[f"wp{position}"] = Sum("possible_cost", filter=in_window & PENDING)
    figures = CostEntry.objects.filter(provider_key_id__in=list(windows)).aggregate(**sums)

    def money(name):
        return (figures[name] or Decimal(0)).quantize(MICRODOLLAR)

    return {
        key_id: {
            "total": money(f"t{position}"),
            "count": figures[f"n{position}"] or 0,
            "pending": money(f"p{position}"),
            "window_total": money(f"wt{position}"),
            "window_pending": money(f"wp{position}"),
        }
        for position, key_id in enumerate(windows)
    }


def ledger_on_account_key() -> dict:
    """The ledger's entries that called with IMAGEROUTER_API_KEY (no minted key): before a
    management key was set, or while none is."""
    figures = CostEntry.objects.filter(provider_key__isnull=True).aggregate(
        total=Sum("cost"), count=Count("id"), pending=Sum("possible_cost", filter=PENDING)
    )
    return {
        "total": (figures["total"] or Decimal(0)).quantize(MICRODOLLAR),
        "count": figures["count"],
        "pending": (figures["pending"] or Decimal(0)).quantize(MICRODOLLAR),
    }


def provider_keys_by_provider_id(ids) -> dict:
    """{provider id: ProviderKey} for the keys the studio minted among `ids`."""
    keys = ProviderKey.objects.filter(provider_id__in=[i for i in ids if i]).select_related(
        "team", "user"
    )
    return {key.provider_id: key for key in keys}
