"""The admin cost review: who spent what, in which team, on which models, day by day; the ledger
as CSV; and the organization's budget. Staff only. A team's managers get the same figures for their team (views/teams.py,
which calls review_figures, entries_figures and ledger_csv with the team).

Periods are whole UTC days. Every figure is an aggregate query on the ledger's roll-ups for the
chosen period (see selectors/review.py), so the pages stay fast however many jobs there are;
lists of entries come from the ledger, paginated. Reconciliation with the provider's figures is
in views/reconciliation.py.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from jobs import charts, selectors, services
from jobs.csvstream import csv_cell, csv_response
from jobs.models import Budget, Team
from jobs.security import client_ip
from jobs.templatetags.studio import usd

USERS_PER_PAGE = 100
ENTRIES_PER_PAGE = 50
MAX_PERIOD_DAYS = 3 * 366

# Each table's sort options: the GET value (a leading "-" for descending) names the column. The
# tables hold grouped rows (a few hundred days, a few dozen models, the period's users), so they
# are sorted here; ties keep the name order.
USER_SORTS = {"name": "username", "total": "total", "count": "count"}
TEAM_SORTS = {"name": "name", "total": "total"}
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

    def entries(self, *, team=None):
        return selectors.ledger_for_period(start=self.start, end=self.end, team=team)


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


def period_form(request) -> PeriodForm:
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


def paged(rows, *, count: int, number):
    """A page of `rows`, whose length the caller has already counted in an aggregate it needed
    anyway: the Paginator would otherwise run a second COUNT over the same entries."""
    paginator = Paginator(rows, ENTRIES_PER_PAGE)
    paginator.count = count  # a cached_property: setting it skips the query
    return paginator.get_page(number)


def review_context(request, **extra) -> dict:
    return {**admin.site.each_context(request), **extra}


def review_figures(request, period: Period, *, team=None) -> dict:
    """The review's figures for the period, as template context: totals, the tables by user
    (by member for a team), by team (staff only), by model and by day, sorted as asked, and the
    daily chart. With `team`, only the entries charged to it (a team's managers' review)."""
    user_sort = _sort(request, "user_sort", USER_SORTS, "-total")
    team_sort = _sort(request, "team_sort", TEAM_SORTS, "-total")
    model_sort = _sort(request, "model_sort", MODEL_SORTS, "-total")
    day_sort = _sort(request, "day_sort", DAY_SORTS, "name")

    days_of = {"first_day": period.first_day, "last_day": period.last_day}
    # A team's review has one team: its managers learn nothing of the others.
    teams = None
    if team is None:
        users, teams = selectors.review_by_user_and_team(**days_of)
        teams = _sorted(teams, TEAM_SORTS, team_sort)
    else:
        users = selectors.review_by_user(**days_of, team=team)
    users = _sorted(users, USER_SORTS, user_sort)
    days, models = selectors.review_by_day_and_model(**days_of, team=team)
    # The totals add up the grouped day rows (at most a few hundred), not the entries.
    totals = {
        "total": sum((day["total"] for day in days), Decimal(0)),
        "count": sum(day["count"] for day in days),
        "pending": sum((day["pending"] for day in days), Decimal(0)),
    }
    whose = f"{team.label}'s spend" if team is not None else "Spend"
    return {
        "period": period,
        "totals": totals,
        "users": Paginator(users, USERS_PER_PAGE).get_page(request.GET.get("users_page")),
        "user_count": len(users),
        "teams": teams,
        "models": _sorted(models, MODEL_SORTS, model_sort),
        "days": _sorted(days, DAY_SORTS, day_sort),
        "chart": charts.bar_chart(
            charts.daily_bars(days),
            title=f"{whose} per day, {period.first_day} to {period.last_day}",
            chart_id="review-daily",
        ),
        "user_headers": _sort_headers(request, "user_sort", USER_SORTS, user_sort),
        "team_headers": _sort_headers(request, "team_sort", TEAM_SORTS, team_sort),
        "model_headers": _sort_headers(request, "model_sort", MODEL_SORTS, model_sort),
        "day_headers": _sort_headers(request, "day_sort", DAY_SORTS, day_sort),
    }


@staff_member_required
@require_GET
def cost_review(request):
    form = period_form(request)
    return render(
        request,
        "review/cost_review.html",
        review_context(
            request,
            title="Cost review",
            form=form,
            **review_figures(request, form.period),
            entries_url=reverse("costs:entries"),
            organization=selectors.organization_budget_status(),
            budget_form=_organization_budget_form(),
            notices=selectors.notices_for_organization(),
        ),
    )


class BudgetForm(forms.Form):
    """A budget's limit in USD (empty: no limit) and its period. Bad input is a form error with
    a sentence, never a 500: Django's DecimalField refuses text, NaN and Infinity."""

    limit = forms.DecimalField(
        label="Limit (USD)",
        required=False,
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=2,
        error_messages={
            "invalid": "Enter an amount in dollars, such as 25 or 12.50.",
            "min_value": "A budget cannot be negative. Leave it empty for no limit.",
            "max_digits": "That is more than this studio can count; enter a smaller amount.",
            "max_whole_digits": "That is more than this studio can count; enter a smaller amount.",
            "max_decimal_places": "Enter whole cents at most, such as 12.50.",
        },
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        help_text="Empty means no limit.",
    )
    period = forms.ChoiceField(
        label="Period", choices=Budget.Period.choices, initial=Budget.Period.MONTH
    )

    def __init__(self, data=None, *, budget: Budget | None = None, **kwargs):
        initial = None
        if budget is not None:
            initial = {"limit": budget.limit, "period": budget.period}
        super().__init__(data, initial=initial, **kwargs)
        key = self.add_prefix("limit")
        if self.is_bound and isinstance(self.data.get(key), str):
            # "$1,250.50" is how people write an amount; the field alone calls it no number.
            self.data = self.data.copy()
            self.data[key] = self.data[key].strip().removeprefix("$").replace(",", "").strip()


def _organization_budget_form(data=None) -> BudgetForm:
    budget = Budget.objects.filter(level=Budget.Level.ORGANIZATION).first()
    return BudgetForm(data, budget=budget, prefix="organization")


@staff_member_required
@require_POST
def organization_budget_set(request):
    """Staff set the organization's cap on all spend, from the cost review."""
    form = _organization_budget_form(request.POST)
    if form.is_valid():
        try:
            services.budget_set(
                level=Budget.Level.ORGANIZATION,
                limit=form.cleaned_data["limit"],
                period=form.cleaned_data["period"],
                changed_by=request.user,
                address=client_ip(request),
            )
        except services.BudgetLimitError as exc:
            messages.error(request, str(exc))
        else:
            status = selectors.organization_budget_status()
            messages.success(request, f"The organization's budget is now {budget_words(status)}.")
    else:
        messages.error(request, f"The organization's budget was not changed: {form_errors(form)}")
    return redirect(reverse("costs:review"))


def budget_words(status) -> str:
    """ "$25.00 a month, $3.10 left, resets in 3 days, on 1 Jan" or "no limit"."""
    if status.limit is None:
        return "no limit"
    return (
        f"{usd(status.limit)} per {status.budget.get_period_display()}, "
        f"{usd(status.left_or_zero)} left, {status.resets}"
    )


def form_errors(form) -> str:
    return " ".join(
        f"{form.fields[name].label if name in form.fields else ''}: {error}".lstrip(": ")
        for name, errors in form.errors.items()
        for error in errors
    )


@dataclass(frozen=True)
class Subject:
    """What a drill-down is about: the ledger's filter, which roll-up has its totals (a
    person's, or a day's by team and model) and that roll-up's filter, and its words."""

    where: dict
    by_user: bool
    words: str
    query: dict

    def entries(self, entries):
        return entries.filter(**self.where)


def entries_subject(request, *, team=None) -> Subject:
    """The drill-down's subject from the GET parameters, or 404.

    `user` and `model` for everyone; `team` (a team's id, or "personal") for staff only, where
    `team` is None. In a team's review a user with no entries in the team is just an empty
    list: it tells a manager nothing about anyone's personal spend."""
    username, model, team_key = (request.GET.get(k) for k in ("user", "model", "team"))
    if username and team is not None:
        # No 404 for an unknown name here: it would tell a manager who has an account. The
        # name is looked up first, so the entries are read by (user, created_at): joining
        # auth_user to a year of the team's entries took seconds.
        User = get_user_model()
        user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        where = {"user": user} if user is not None else {"pk__in": []}
        return Subject(where, True, f"member {username}", {"user": username})
    if username:
        User = get_user_model()
        user = get_object_or_404(User, **{User.USERNAME_FIELD: username})
        return Subject({"user": user}, True, f"user {username}", {"user": username})
    if model:
        return Subject({"model": model}, False, f"model {model}", {"model": model})
    if team_key and team is None:
        if team_key == "personal":
            return Subject({"team__isnull": True}, False, "personal spaces", {"team": team_key})
        try:
            chosen = get_object_or_404(Team, pk=uuid.UUID(team_key))
        except ValueError:
            raise Http404("No such team.") from None
        return Subject({"team": chosen}, False, chosen.label, {"team": team_key})
    raise Http404("Choose a user, a team or a model.")


def entries_figures(request, period: Period, *, team=None) -> dict:
    """The drill-down's context: the entries of one user or model (or team, for staff) in the
    period, newest first, paginated, with their totals (from the roll-ups)."""
    subject = entries_subject(request, team=team)
    totals = selectors.review_totals(
        first_day=period.first_day,
        last_day=period.last_day,
        within=team,
        by_user=subject.by_user,
        **subject.where,
    )
    page = paged(
        selectors.ledger_entries_for_review(subject.entries(period.entries(team=team))),
        count=totals["count"],
        number=request.GET.get("page"),
    )
    return {
        "subject": subject.words,
        "period": period,
        "filter_query": urlencode(subject.query),
        "totals": totals,
        "page": page,
    }


@staff_member_required
@require_GET
def cost_entries(request):
    """The drill-down: one user's, team's or model's ledger entries for the period."""
    form = period_form(request)
    figures = entries_figures(request, form.period)
    return render(
        request,
        "review/cost_entries.html",
        review_context(
            request, title=f"Ledger entries for {figures['subject']}", form=form, **figures
        ),
    )


EXPORT_HEADER = [
    "date",
    "user",
    "team",
    "model",
    "seconds",
    "size",
    "status",
    "cost",
    "possible_cost",
    "latency_ms",
]


def _export_row(created_at, user, team, model, seconds, size, status, cost, possible, latency):
    return (
        created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        csv_cell(user if user is not None else "(deleted account)"),
        csv_cell(team),  # empty for a personal space
        csv_cell(model),
        csv_cell(seconds),
        csv_cell(size),
        status,
        cost,
        possible,  # None is written as an empty cell
        latency,
    )


def ledger_csv(period: Period, *, team=None, name: str = "ledger") -> StreamingHttpResponse:
    """The period's ledger (or a team's part of it) as CSV, one row per job, streamed in chunks
    from a database cursor so a million rows never sit in memory."""

    def rows():
        for row in selectors.ledger_rows_for_export(period.entries(team=team)):
            yield _export_row(*row)

    filename = f"{name}-{period.first_day}-to-{period.last_day}.csv"
    return csv_response(header=EXPORT_HEADER, rows=rows, filename=filename)


@staff_member_required
@require_GET
def cost_export(request):
    """The period's whole ledger as CSV."""
    return ledger_csv(period_form(request).period)
