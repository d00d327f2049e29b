"""Spending pages' figures: one person's months and days, grouped in the database.

Every figure here and in review.py is one aggregate query on the ledger (Sum/Count grouped in the
database), so the pages cost the same whether a period holds ten entries or a million. Python
only ever sees the grouped rows: a few hundred days, a few dozen models, a page of users.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth

from jobs.models import CostEntry, Job

from .budgets import MICRODOLLAR, month_start

PENDING = Q(reconciliation=CostEntry.Reconciliation.PENDING)
SPEND_FIGURES = {
    "total": Sum("cost"),
    "count": Count("id"),
    "pending": Sum("possible_cost", filter=PENDING),
}


def with_zeros(row: dict) -> dict:
    """Missing sums as 0, and every sum at the ledger's precision."""
    row["total"] = (row.get("total") or Decimal(0)).quantize(MICRODOLLAR)
    row["pending"] = (row.get("pending") or Decimal(0)).quantize(MICRODOLLAR)
    row["count"] = row.get("count") or 0
    return row


def months_back(start, months: int):
    """The first instant of the month `months` before the month that `start` opens."""
    index = start.year * 12 + (start.month - 1) - months
    return start.replace(year=index // 12, month=index % 12 + 1)


def spend_total_for_user(*, user) -> Decimal:
    """What the user's jobs cost, deleted ones included: deleting a video does not refund it."""
    total = Job.objects.filter(owner=user).aggregate(total=Sum("cost"))["total"]
    return total or Decimal(0)


def spending_by_month_for_user(*, user, months: int = 12, now=None) -> list[dict]:
    """The user's last `months` calendar months (UTC), newest first, each with its total, job
    count, pending possible costs and a by-model breakdown. One grouped query (user, created_at
    index); months without jobs are there with zeros."""
    this_month = month_start(now)
    first = months_back(this_month, months - 1)
    rows = (
        CostEntry.objects.filter(user=user, created_at__gte=first)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "model")
        .annotate(**SPEND_FIGURES)
        .order_by("month", "model")
    )
    by_month = {
        months_back(this_month, back): with_zeros({"month": months_back(this_month, back)})
        for back in range(months)
    }
    for row in rows:
        month = by_month[_as_month(row["month"], this_month)]
        month.setdefault("models", []).append(with_zeros(row))
        month["total"] += row["total"]
        month["pending"] += row["pending"]
        month["count"] += row["count"]
    return [by_month[key] for key in sorted(by_month, reverse=True)]


def _as_month(value, like):
    """TruncMonth gives a datetime on PostgreSQL and, for some backends, a date: match `like`."""
    if isinstance(value, datetime):
        return value
    return like.replace(year=value.year, month=value.month)


def daily_spend(entries, *, first_day: date, last_day: date) -> list[dict]:
    """Spend per UTC day from first_day to last_day inclusive, days without entries as zeros."""
    rows = (
        entries.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(**SPEND_FIGURES)
        .order_by("day")
    )
    found = {row["day"]: with_zeros(row) for row in rows}
    days = []
    day = first_day
    while day <= last_day:
        days.append(found.get(day) or with_zeros({"day": day}))
        day += timedelta(days=1)
    return days
