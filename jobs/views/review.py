"""The admin cost review: who spent what, on which models, day by day; the ledger as CSV; and the
reconciliation of the studio's figures with the provider's. Staff only.

Every figure is an aggregate query on the ledger for the chosen period (see selectors), so the
pages stay fast however many jobs there are; lists of entries are paginated.
"""

import contextlib
import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from jobs import charts, imagerouter, selectors, services
from jobs.models import CostEntry
from jobs.templatetags.studio import usd

USERS_PER_PAGE = 100
ENTRIES_PER_PAGE = 50
CSV_ROWS_PER_CHUNK = 1000  # rows per piece of the streamed CSV: big enough to be cheap to send
MAX_PERIOD_DAYS = 3 * 366

# Each table's sort options: the GET value (a leading "-" for descending) names the column. The
# tables hold grouped rows (a few hundred days, a few dozen models, the period's users), so they
# are sorted here; ties keep the name order.
USER_SORTS = {"name": "username", "total": "total", "count": "count"}
MODEL_SORTS = {"name": "model", "total": "total", "count": "count"}
DAY_SORTS = {"name": "day", "total": "total", "count": "count"}


@dataclass(frozen=True)
class Period:
    """Whole UTC days, first_day to last_day inclusive."""

    first_day: date
    last_day: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time.min, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last_day + timedelta(days=1), time.min, tzinfo=UTC)

    @property
    def query(self) -> str:
        return urlencode({"from": self.first_day.isoformat(), "to": self.last_day.isoformat()})

    def entries(self):
        return selectors.ledger_for_period(start=self.start, end=self.end)


class PeriodForm(forms.Form):
    """From and to dates, as GET parameters; both default to this month so far."""

    def __init__(self, data, *, today: date):
        super().__init__(data)
        self.today = today
        # "from" is a Python keyword, so these fields are added by name rather than declared.
        self.fields["from"] = forms.DateField(
            label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
        )
        self.fields["to"] = forms.DateField(
            label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
        )

    def clean(self):
        data = super().clean()
        first = data.get("from") or self.today.replace(day=1)
        last = data.get("to") or self.today
        if first > last:
            raise forms.ValidationError("The period must start on or before its last day.")
        if (last - first).days >= MAX_PERIOD_DAYS:
            raise forms.ValidationError("Choose a period of at most three years.")
        data["period"] = Period(first, last)
        return data

    @property
    def period(self) -> Period:
        if self.is_valid():
            return self.cleaned_data["period"]
        return Period(self.today.replace(day=1), self.today)


def _period_form(request) -> PeriodForm:
    """The form, bound to the GET parameters or, where one is missing, to its default, so the
    date fields always show the period the page is about."""
    today = timezone.now().date()
    defaults = {"from": today.replace(day=1).isoformat(), "to": today.isoformat()}
    return PeriodForm({key: request.GET.get(key) or defaults[key] for key in defaults}, today=today)


def _sort(request, param: str, options, default: str) -> tuple[str, bool]:
    """The table's sort column and direction from GET[param], or the default for a bad value."""
    value = request.GET.get(param, default)
    if value.lstrip("-") not in options:
        value = default
    return value.lstrip("-"), value.startswith("-")


def _sort_headers(request, param: str, options, current: tuple[str, bool]) -> dict:
    """For each column, the link that sorts by it (flipping the direction if it is the current
    column; totals start high to low, names A to Z) and its aria-sort value."""
    column, descending = current
    headers = {}
    for name in options:
        if name == column:
            next_value = name if descending else f"-{name}"
            aria = "descending" if descending else "ascending"
        else:
            next_value = name if name == "name" else f"-{name}"
            aria = "none"
        query = request.GET.copy()
        query[param] = next_value
        query.pop("users_page", None)
        headers[name] = {"url": f"?{query.urlencode()}", "aria": aria}
    return headers


def _sorted(rows: list[dict], options, current: tuple[str, bool]) -> list[dict]:
    column, descending = current
    by_name = sorted(rows, key=lambda row: row[options["name"]])
    if column == "name":
        return by_name[::-1] if descending else by_name
    return sorted(by_name, key=lambda row: row[options[column]], reverse=descending)


def _page(rows, *, count: int, number):
    """A page of `rows`, whose length the caller has already counted in an aggregate it needed
    anyway: the Paginator would otherwise run a second COUNT over the same entries."""
    paginator = Paginator(rows, ENTRIES_PER_PAGE)
    paginator.count = count  # a cached_property: setting it skips the query
    return paginator.get_page(number)


def _context(request, **extra) -> dict:
    return {**admin.site.each_context(request), **extra}


@staff_member_required
@require_GET
def cost_review(request):
    form = _period_form(request)
    period = form.period
    entries = period.entries()

    user_sort = _sort(request, "user_sort", USER_SORTS, "-total")
    model_sort = _sort(request, "model_sort", MODEL_SORTS, "-total")
    day_sort = _sort(request, "day_sort", DAY_SORTS, "name")

    users = _sorted(selectors.spend_by_user(entries), USER_SORTS, user_sort)
    days, models = selectors.spend_by_day_and_model(
        entries, first_day=period.first_day, last_day=period.last_day
    )
    # The totals add up the grouped day rows (at most a few hundred), not the entries.
    totals = {
        "total": sum((day["total"] for day in days), Decimal(0)),
        "count": sum(day["count"] for day in days),
        "pending": sum((day["pending"] for day in days), Decimal(0)),
    }

    return render(
        request,
        "review/cost_review.html",
        _context(
            request,
            title="Cost review",
            form=form,
            period=period,
            totals=totals,
            users=Paginator(users, USERS_PER_PAGE).get_page(request.GET.get("users_page")),
            user_count=len(users),
            models=_sorted(models, MODEL_SORTS, model_sort),
            days=_sorted(days, DAY_SORTS, day_sort),
            chart=charts.bar_chart(
                charts.daily_bars(days),
                title=f"Spend per day, {period.first_day} to {period.last_day}",
                chart_id="review-daily",
            ),
            user_headers=_sort_headers(request, "user_sort", USER_SORTS, user_sort),
            model_headers=_sort_headers(request, "model_sort", MODEL_SORTS, model_sort),
            day_headers=_sort_headers(request, "day_sort", DAY_SORTS, day_sort),
        ),
    )


@staff_member_required
@require_GET
def cost_entries(request):
    """The drill-down: one user's or one model's ledger entries for the period, newest first."""
    form = _period_form(request)
    period = form.period
    entries = period.entries()
    username, model = request.GET.get("user"), request.GET.get("model")
    if username:
        User = get_user_model()
        user = get_object_or_404(User, **{User.USERNAME_FIELD: username})
        entries, subject = entries.filter(user=user), f"user {username}"
    elif model:
        entries, subject = entries.filter(model=model), f"model {model}"
    else:
        raise Http404("Choose a user or a model.")
    totals = selectors.spend_totals(entries)
    page = _page(
        selectors.ledger_entries_for_review(entries),
        count=totals["count"],
        number=request.GET.get("page"),
    )
    return render(
        request,
        "review/cost_entries.html",
        _context(
            request,
            title=f"Ledger entries for {subject}",
            subject=subject,
            form=form,
            period=period,
            filter_query=urlencode({"user": username} if username else {"model": model}),
            totals=totals,
            page=page,
        ),
    )


def _cell(value) -> str:
    """A spreadsheet must never read a user-supplied cell as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


EXPORT_HEADER = [
    "date",
    "user",
    "model",
    "seconds",
    "size",
    "status",
    "cost",
    "possible_cost",
    "latency_ms",
]


def _export_row(created_at, user, model, seconds, size, status, cost, possible, latency):
    return (
        created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        _cell(user),
        _cell(model),
        _cell(seconds),
        _cell(size),
        status,
        cost,
        possible,  # None is written as an empty cell
        latency,
    )


@staff_member_required
@require_GET
def cost_export(request):
    """The period's ledger as CSV, one row per job, streamed in chunks from a database cursor so
    a million rows never sit in memory."""
    period = _period_form(request).period

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_HEADER)
        # Inside a transaction PostgreSQL's server-side cursor hands rows over as the query
        # finds them. Outside one, Django must declare it WITH HOLD, and PostgreSQL then runs
        # the whole query before sending the first row (2 s for a month of a million jobs).
        # Not on SQLite, whose transactions here take the write lock (settings.py): the
        # workers could not record a cost until the download ended.
        postgres = connection.vendor == "postgresql"
        with transaction.atomic() if postgres else contextlib.nullcontext():
            entries = selectors.ledger_rows_for_export(period.entries())
            for count, row in enumerate(entries, 1):
                writer.writerow(_export_row(*row))
                if count % CSV_ROWS_PER_CHUNK == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    filename = f"ledger-{period.first_day}-to-{period.last_day}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@staff_member_required
@require_GET
def cost_reconciliation(request):
    """The studio's totals beside the provider's usage, and the unknown outcomes to check."""
    form = _period_form(request)
    period = form.period
    totals = selectors.reconciliation_totals(start=period.start, end=period.end)
    in_period, all_time = totals["period"], totals["all_time"]
    in_flight = selectors.live_holds_total()

    provider, provider_error = None, None
    try:
        provider = imagerouter.get_client().credits(by_api_key=True)
    except imagerouter.ImageRouterError as exc:
        provider_error = str(exc) or type(exc).__name__
    usage = provider.get("credit_usage") if provider else None

    comparison = None
    if usage is not None:
        difference = usage - all_time["total"]
        explainable = all_time["pending"] + in_flight
        comparison = {
            "period_difference": _signed_usd(usage - in_period["total"]),
            "difference": difference,
            "difference_text": _signed_usd(difference),
            "explainable": explainable,
            "unexplained": difference - explainable if difference > explainable else Decimal(0),
        }
    show_all = request.GET.get("show") == "all"
    page = _page(
        selectors.unknown_outcomes(period.entries(), pending_only=not show_all),
        count=in_period["unknown"] if show_all else in_period["to_check"],
        number=request.GET.get("page"),
    )
    return render(
        request,
        "review/reconciliation.html",
        _context(
            request,
            title="Reconciliation",
            form=form,
            period=period,
            in_period=in_period,
            all_time=all_time,
            in_flight=in_flight,
            provider=provider,
            provider_error=provider_error,
            usage=usage,
            comparison=comparison,
            show_all=show_all,
            page=page,
        ),
    )


def _signed_usd(amount: Decimal) -> str:
    """A negative amount with a minus sign before the dollar sign, as people write it."""
    return f"−{usd(-amount)}" if amount < 0 else usd(amount)


@staff_member_required
@require_POST
def cost_reconcile(request, job_id):
    """An admin's verdict on one unknown outcome: charged or not charged."""
    entry = get_object_or_404(CostEntry, job_id=job_id, outcome=CostEntry.Outcome.UNKNOWN)
    verdict = request.POST.get("verdict")
    amount, amount_error = _charged_amount(request.POST.get("amount", ""), entry)
    if verdict not in ("charged", "not_charged"):
        messages.error(request, "Choose charged or not charged.")
    elif verdict == "charged" and amount_error:
        messages.error(request, amount_error)
    elif services.ledger_reconcile(
        entry=entry, charged=verdict == "charged", by=request.user, amount=amount
    ):
        entry.refresh_from_db()
        messages.success(
            request,
            f"Marked job {entry.job_id} {entry.get_reconciliation_display().removeprefix('checked: ')}"
            f"; it now counts {usd(entry.cost)}.",
        )
    else:
        messages.info(request, f"Job {entry.job_id} was already checked; nothing changed.")
    next_url = request.POST.get("next", "")
    back = reverse("costs:reconciliation")
    # Back to the reconciliation page it came from: a path on this site under it, never a view
    # name (redirect() would look one up, and an unknown name is a NoReverseMatch, a 500).
    if not (
        url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        and next_url.startswith(back)
    ):
        next_url = back
    return redirect(next_url)


def _charged_amount(raw: str, entry: CostEntry) -> tuple[Decimal | None, str]:
    """The amount the provider's logs show, if the admin typed one: at most the possible cost."""
    raw = raw.strip().lstrip("$")
    if not raw:
        return None, ""
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        return None, f"{raw!r} is not an amount in dollars, such as 0.34."
    if not amount.is_finite():  # NaN cannot be compared, Infinity is no amount
        return None, f"{raw!r} is not an amount in dollars, such as 0.34."
    top = entry.possible_cost or Decimal(0)
    if not Decimal(0) <= amount <= top:
        return None, f"The amount must be between $0 and the possible cost, {usd(top)}."
    return amount.quantize(Decimal("0.000001")), ""
