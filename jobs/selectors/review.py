"""The admin cost review's figures: a period of the whole ledger by user, model and day, its
entries, the CSV's rows, and the reconciliation's totals. Each is one aggregate query (see
spending.py)."""

from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from jobs.models import CostEntry, Job

from .budgets import MICRODOLLAR
from .spending import PENDING, SPEND_FIGURES, with_zeros


def ledger_for_period(*, start, end):
    """The ledger entries created in [start, end): the cost_created index serves this range."""
    return CostEntry.objects.filter(created_at__gte=start, created_at__lt=end)


def spend_totals(entries) -> dict:
    return with_zeros(entries.aggregate(**SPEND_FIGURES))


def spend_by_user(entries) -> list[dict]:
    """One row per user with entries: user_id, username, total, count, pending; unsorted.

    Grouped by user_id alone, with the names fetched afterwards for the grouped ids: joining
    every entry to auth_user before grouping doubled the query's time on a million rows.
    """
    rows = [with_zeros(row) for row in entries.values("user_id").annotate(**SPEND_FIGURES)]
    names = usernames_by_id([row["user_id"] for row in rows])
    for row in rows:
        row["username"] = names.get(row["user_id"], "")
    return rows


def usernames_by_id(ids: list[int], *, chunk: int = 5000) -> dict[int, str]:
    """{id: username}, in chunks that stay under SQLite's limit on query parameters."""
    User = get_user_model()
    names = {}
    for index in range(0, len(ids), chunk):
        users = User.objects.filter(pk__in=ids[index : index + chunk])
        names.update(users.values_list("pk", User.USERNAME_FIELD))
    return names


def spend_by_day_and_model(entries, *, first_day: date, last_day: date):
    """(days, models): the period's spend per UTC day (every day, zeros included, in date
    order) and per model (unsorted), from one query grouped by day and model. The grouped rows
    number at most days times models, so adding them up here is cheap; two separate grouped
    queries would read every entry twice."""
    rows = (
        entries.annotate(day=TruncDate("created_at"))
        .values("day", "model")
        .annotate(**SPEND_FIGURES)
        .order_by()
    )
    days, models = {}, {}
    for row in rows:
        row = with_zeros(row)
        for key, table in ((row["day"], days), (row["model"], models)):
            group = table.get(key)
            if group is None:
                table[key] = {
                    "total": row["total"],
                    "count": row["count"],
                    "pending": row["pending"],
                }
            else:
                group["total"] += row["total"]
                group["count"] += row["count"]
                group["pending"] += row["pending"]
    every_day = []
    day = first_day
    while day <= last_day:
        every_day.append({"day": day, **days.get(day, with_zeros({}))})
        day += timedelta(days=1)
    return every_day, [{"model": model, **figures} for model, figures in models.items()]


def ledger_entries_for_review(entries):
    """Entries with their job and user, for a drill-down page (paginate it)."""
    return entries.select_related("user", "job").order_by("-created_at", "-pk")


def ledger_rows_for_export(entries):
    """One tuple per entry with the job's facts, streamed from the database in chunks."""
    rows = entries.order_by("created_at", "pk").values_list(
        "created_at",
        "user__username",
        "model",
        "job__seconds",
        "job__size",
        "job__status",
        "cost",
        "possible_cost",
        "job__latency_ms",
    )
    return rows.iterator(chunk_size=2000)


def reconciliation_totals(*, start, end) -> dict:
    """The ledger's all-time figures and the period's, in one pass over the ledger (the
    all-time sums read every entry anyway, so the period's ride along as FILTERed sums):
    {"all_time": {total, count, pending}, "period": {total, count, pending, unknown,
    to_check}}."""
    in_period = Q(created_at__gte=start, created_at__lt=end)
    unknown = Q(outcome=CostEntry.Outcome.UNKNOWN)
    figures = CostEntry.objects.aggregate(
        **SPEND_FIGURES,
        period_total=Sum("cost", filter=in_period),
        period_count=Count("id", filter=in_period),
        period_pending=Sum("possible_cost", filter=in_period & PENDING),
        period_unknown=Count("id", filter=in_period & unknown),
        period_to_check=Count("id", filter=in_period & PENDING),
    )
    period = with_zeros(
        {
            "total": figures["period_total"],
            "count": figures["period_count"],
            "pending": figures["period_pending"],
        }
    )
    period["unknown"] = figures["period_unknown"]
    period["to_check"] = figures["period_to_check"]
    all_time = with_zeros({key: figures[key] for key in SPEND_FIGURES})
    return {"all_time": all_time, "period": period}


def unknown_outcomes(entries, *, pending_only: bool):
    """Entries whose outcome is unknown, newest first: only those still to check (the
    cost_pending partial index), or every one, checked or not (cost_created, read backwards
    until a page is full)."""
    if pending_only:
        entries = entries.filter(PENDING)
    else:
        entries = entries.filter(outcome=CostEntry.Outcome.UNKNOWN)
    return entries.select_related("user", "job", "reconciled_by").order_by("-created_at", "-pk")


def live_holds_total() -> Decimal:
    """What every job in flight may still cost: the provider reserves it while the job runs."""
    live = Job.objects.filter(status__in=Job.LIVE)
    return (live.aggregate(total=Sum("hold"))["total"] or Decimal(0)).quantize(MICRODOLLAR)
