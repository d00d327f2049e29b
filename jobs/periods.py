"""Budget periods: calendar day, ISO week (Monday to Sunday) and calendar month, all in UTC, the
same windows ImageRouter uses for its own key limits."""

import datetime as dt

from django.utils import timezone

DAY, WEEK, MONTH = "day", "week", "month"

PERIOD_WORDS = {DAY: "today", WEEK: "this week", MONTH: "this month"}


def utc_today(now: dt.datetime | None = None) -> dt.date:
    return (now or timezone.now()).astimezone(dt.UTC).date()


def period_start(period: str, day: dt.date) -> dt.date:
    """The first day of the period that holds `day`."""
    if period == DAY:
        return day
    if period == WEEK:
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def period_end(period: str, day: dt.date) -> dt.date:
    """The first day of the next period: the budget resets at 00:00 UTC on it."""
    if period == DAY:
        return day + dt.timedelta(days=1)
    if period == WEEK:
        return period_start(WEEK, day) + dt.timedelta(days=7)
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def period_start_datetime(period: str, now: dt.datetime | None = None) -> dt.datetime:
    start = period_start(period, utc_today(now))
    return dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)


def resets_words(period: str, now: dt.datetime | None = None) -> str:
    """When a budget of this period starts again: "resets in 3 days, on 1 Jan", "resets in 5
    hours, at 00:00 UTC", "resets in 40 minutes, at 00:00 UTC"."""
    now = now or timezone.now()
    end_day = period_end(period, utc_today(now))
    end = dt.datetime.combine(end_day, dt.time.min, tzinfo=dt.UTC)
    left = end - now.astimezone(dt.UTC)
    if left >= dt.timedelta(days=1):
        days = left.days + (1 if left.seconds else 0)
        return f"resets in {days} day{'s' if days != 1 else ''}, on {end_day.day} {end_day:%b}"
    hours = int(left.total_seconds() // 3600)
    if hours >= 1:
        return f"resets in {hours} hour{'s' if hours != 1 else ''}, at 00:00 UTC"
    minutes = max(1, int(left.total_seconds() // 60))
    return f"resets in {minutes} minute{'s' if minutes != 1 else ''}, at 00:00 UTC"
