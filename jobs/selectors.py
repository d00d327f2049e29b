"""Every read. Anything that returns jobs is scoped to the person asking."""

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth
from django.shortcuts import get_object_or_404
from django.utils import timezone

from .models import ApiToken, Budget, CostEntry, Job, VideoModel

UNSET = object()
# The ledger's precision (decimal_places=6). SQLite adds decimals as floats (6.00 comes back as
# 5.99999999999999), so every sum is brought back to it; PostgreSQL's are exact already.
MICRODOLLAR = Decimal("0.000001")


def job_get_for_user(*, user, job_id) -> Job:
    """The job, if `user` owns it or is staff; otherwise 404, so nobody learns it exists."""
    jobs = Job.objects.filter(deleted_at__isnull=True)
    if not user.is_staff:
        jobs = jobs.filter(owner=user)
    return get_object_or_404(jobs, pk=job_id)


def job_get_for_owner(*, user, job_id) -> Job:
    """The job, only for its owner: for actions that spend or destroy (cancel, retry, delete).
    Staff may look at anyone's job, but not spend money or delete work in their name."""
    return get_object_or_404(Job.objects.filter(deleted_at__isnull=True, owner=user), pk=job_id)


@dataclass(frozen=True)
class PollState:
    """What an unchanged status poll needs: the job's owner, status and attempt, and the polling
    user's password hash (for the poll pass's check), is_active and is_staff."""

    owner_id: int
    status: str
    attempt: int
    password: str
    is_active: bool
    is_staff: bool


@functools.cache
def _poll_sql(vendor: str) -> str:
    """The fast path's query for this database vendor, built once from the models' _meta."""
    qn = connection.ops.quote_name
    job, user, session = Job._meta, get_user_model()._meta, Session._meta

    def column(meta, name):
        return qn(meta.get_field(name).column)

    # Only names from _meta go into the text; the values are the query's parameters.
    return (
        f"SELECT j.{column(job, 'owner')}, j.{column(job, 'status')},"  # noqa: S608
        f" j.{column(job, 'attempt')}, u.{column(user, 'password')},"
        f" u.{column(user, 'is_active')}, u.{column(user, 'is_staff')}"
        f" FROM {qn(job.db_table)} j, {qn(user.db_table)} u, {qn(session.db_table)} s"
        f" WHERE j.{column(job, 'id')} = %s AND j.{column(job, 'deleted_at')} IS NULL"
        f" AND u.{column(user, 'id')} = %s"
        f" AND s.{column(session, 'session_key')} = %s AND s.{column(session, 'expire_date')} > %s"
    )


class _PreparedCursor(psycopg.Cursor):
    """A server-binding psycopg cursor whose statements ask to be prepared. Django's own cursors
    bind on the client and never prepare, so this one is the only statement the connection keeps
    planned (settings.DATABASES' prepare_threshold lets psycopg prepare only on request)."""

    def execute(self, query, params=None, *, prepare=True, binary=None):
        return super().execute(query, params, prepare=prepare, binary=binary)


def _poll_cursor(db):
    """On PostgreSQL with prepared statements on, a _PreparedCursor; otherwise Django's. Either
    way wrapped as Django wraps its own, so the query is logged and counted like any other."""
    if not (db.vendor == "postgresql" and db.settings_dict["OPTIONS"].get("prepare_threshold")):
        return db.cursor()
    db.ensure_connection()
    db.validate_thread_sharing()
    raw = _PreparedCursor(db.connection)
    return db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)


def job_poll_state(*, job_id, user_id, session_key) -> PollState | None:
    """For the status poll's fast path: the job (not deleted), the polling user and whether the
    session is live (its row exists and has not expired), each by its primary key, in one query.
    None if any is missing. It says nothing about who may see the job: the caller checks the poll
    pass, ownership and the user, from what this returns.

    Raw SQL on purpose. The ORM spends about 0.4 ms of CPU building a query and a model, as much
    as Django's whole middleware stack, and this runs for every open job page every 2 s
    (bench/polling.py). On PostgreSQL the statement is prepared once per connection, which
    halves the database's CPU per poll (BENCHMARKS.md, "Polling"). Table and column names come
    from the models' _meta, and the parameters go through the primary keys' own conversion, so
    it runs on SQLite and PostgreSQL alike. `db` is looked up once: every attribute read through
    django.db.connection goes through a thread-local lookup, which adds up at this rate.
    """
    db = connections[DEFAULT_DB_ALIAS]
    job_pk, user_pk = Job._meta.pk, get_user_model()._meta.pk
    try:
        params = [
            job_pk.get_db_prep_value(job_pk.to_python(job_id), db),
            user_pk.get_db_prep_value(user_pk.to_python(user_id), db),
            session_key,
            db.ops.adapt_datetimefield_value(timezone.now()),
        ]
    except ValidationError:
        return None
    with _poll_cursor(db) as cursor:
        cursor.execute(_poll_sql(db.vendor), params)
        row = cursor.fetchone()
    if row is None:
        return None
    owner_id, status, attempt, password, is_active, is_staff = row
    return PollState(owner_id, status, attempt, password, bool(is_active), bool(is_staff))


# How many recent successes the wait estimate looks at: enough to be steady, recent enough to
# follow a provider that speeds up or slows down.
LATENCY_SAMPLE = 50


@dataclass(frozen=True)
class TypicalWait:
    seconds: float  # the median, from start to stored video
    sample: int  # how many recent successes it comes from


def typical_wait(*, model_id: str) -> TypicalWait | None:
    """The median time from start to stored video of the last LATENCY_SAMPLE successes on this
    model in this studio; None before its first success.

    Uses the job_model_succeeded index, so it reads at most LATENCY_SAMPLE rows.
    """
    rows = (
        Job.objects.filter(model=model_id, status=Job.Status.SUCCEEDED, started_at__isnull=False)
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:LATENCY_SAMPLE]
    )
    waits = sorted((finished - started).total_seconds() for started, finished in rows)
    if not waits:
        return None
    middle = len(waits) // 2
    median = waits[middle] if len(waits) % 2 else (waits[middle - 1] + waits[middle]) / 2
    return TypicalWait(seconds=median, sample=len(waits))


@dataclass(frozen=True)
class QueuePosition:
    mine: int  # queued jobs of the same owner ahead of this one, plus one
    studio: int  # queued jobs of anyone ahead of this one, plus one


def queue_position(*, job: Job) -> QueuePosition:
    """Where a QUEUED job stands: 1 means next. Two counts on the job_status_created index."""
    ahead = Job.objects.filter(status=Job.Status.QUEUED, created_at__lt=job.created_at)
    return QueuePosition(
        mine=ahead.filter(owner_id=job.owner_id).count() + 1, studio=ahead.count() + 1
    )


def spend_total_for_user(*, user) -> Decimal:
    """What the user's jobs cost, deleted ones included: deleting a video does not refund it."""
    total = Job.objects.filter(owner=user).aggregate(total=Sum("cost"))["total"]
    return total or Decimal(0)


def catalog_models(*, user):
    """The models `user` may choose, cheapest first: hidden ones for nobody, staff-only ones for
    staff."""
    models = VideoModel.objects.exclude(visibility=VideoModel.Visibility.HIDDEN)
    if not user.is_staff:
        models = models.filter(visibility=VideoModel.Visibility.EVERYONE)
    return models.order_by("price_max", "id")


@dataclass(frozen=True)
class BudgetStatus:
    limit: Decimal | None  # None: no limit
    used: Decimal  # this month's spend (pending possible costs included) plus live holds

    WARN_AT = Decimal("0.8")

    @property
    def left(self) -> Decimal:
        return Decimal("Infinity") if self.limit is None else self.limit - self.used

    @property
    def is_near_limit(self) -> bool:
        return self.limit is not None and self.used >= self.limit * self.WARN_AT

    @property
    def percent_used(self) -> int:
        if not self.limit:
            return 100 if self.limit is not None else 0
        return int(self.used * 100 / self.limit)


def budget_status_for_user(*, user, monthly_limit=UNSET) -> BudgetStatus:
    """How much of this month's budget is used or held. `monthly_limit` saves a query when the
    caller has just read it."""
    if monthly_limit is UNSET:
        budget = Budget.objects.filter(user=user).values_list("monthly_limit", flat=True).first()
        monthly_limit = budget if budget is not None else settings.DEFAULT_MONTHLY_BUDGET
    used = month_spend_for_user(user=user) + holds_for_user(user=user)
    return BudgetStatus(limit=monthly_limit, used=used)


def month_start(now=None):
    now = now or timezone.now()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_spend_for_user(*, user, now=None) -> Decimal:
    """This calendar month's spend (UTC), counting unreconciled possible costs, to be safe."""
    entries = CostEntry.objects.filter(user=user, created_at__gte=month_start(now))
    totals = entries.aggregate(
        cost=Sum("cost"),
        pending=Sum("possible_cost", filter=Q(reconciliation=CostEntry.Reconciliation.PENDING)),
    )
    return ((totals["cost"] or Decimal(0)) + (totals["pending"] or Decimal(0))).quantize(
        MICRODOLLAR
    )


def holds_for_user(*, user) -> Decimal:
    """What the user's live jobs may still cost."""
    live = Job.objects.filter(owner=user, status__in=Job.LIVE)
    return live.aggregate(total=Sum("hold"))["total"] or Decimal(0)


# Spending and the cost review ----------------------------------------------------------------
# Every figure below is one aggregate query on the ledger (Sum/Count grouped in the database), so
# the pages cost the same whether a period holds ten entries or a million. Python only ever sees
# the grouped rows: a few hundred days, a few dozen models, a page of users.

PENDING = Q(reconciliation=CostEntry.Reconciliation.PENDING)
SPEND_FIGURES = {
    "total": Sum("cost"),
    "count": Count("id"),
    "pending": Sum("possible_cost", filter=PENDING),
}


def _with_zeros(row: dict) -> dict:
    """Missing sums as 0, and every sum at the ledger's precision."""
    row["total"] = (row.get("total") or Decimal(0)).quantize(MICRODOLLAR)
    row["pending"] = (row.get("pending") or Decimal(0)).quantize(MICRODOLLAR)
    row["count"] = row.get("count") or 0
    return row


def months_back(start, months: int):
    """The first instant of the month `months` before the month that `start` opens."""
    index = start.year * 12 + (start.month - 1) - months
    return start.replace(year=index // 12, month=index % 12 + 1)


def ledger_for_period(*, start, end):
    """The ledger entries created in [start, end): the cost_created index serves this range."""
    return CostEntry.objects.filter(created_at__gte=start, created_at__lt=end)


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
        months_back(this_month, back): _with_zeros({"month": months_back(this_month, back)})
        for back in range(months)
    }
    for row in rows:
        month = by_month[_as_month(row["month"], this_month)]
        month.setdefault("models", []).append(_with_zeros(row))
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
    found = {row["day"]: _with_zeros(row) for row in rows}
    days = []
    day = first_day
    while day <= last_day:
        days.append(found.get(day) or _with_zeros({"day": day}))
        day += timedelta(days=1)
    return days


def spend_totals(entries) -> dict:
    return _with_zeros(entries.aggregate(**SPEND_FIGURES))


def spend_by_user(entries) -> list[dict]:
    """One row per user with entries: user_id, username, total, count, pending; unsorted.

    Grouped by user_id alone, with the names fetched afterwards for the grouped ids: joining
    every entry to auth_user before grouping doubled the query's time on a million rows.
    """
    rows = [_with_zeros(row) for row in entries.values("user_id").annotate(**SPEND_FIGURES)]
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
        row = _with_zeros(row)
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
        every_day.append({"day": day, **days.get(day, _with_zeros({}))})
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
    period = _with_zeros(
        {
            "total": figures["period_total"],
            "count": figures["period_count"],
            "pending": figures["period_pending"],
        }
    )
    period["unknown"] = figures["period_unknown"]
    period["to_check"] = figures["period_to_check"]
    all_time = _with_zeros({key: figures[key] for key in SPEND_FIGURES})
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


# My videos: the gallery ------------------------------------------------------------------------


def job_search_for_user(*, user, status: str = "", model: str = "", query: str = ""):
    """The user's own jobs, newest first, narrowed by status, model and words in the prompt.

    The owner filter and the order ride the job_owner_created index. The prompt search is a plain
    icontains, a scan of the owner's rows: fine for the hundreds of jobs a person makes, but at
    scale it would want a trigram (pg_trgm GIN) or full-text index on the prompt.
    """
    jobs = Job.objects.filter(owner=user, deleted_at__isnull=True)
    if status:
        jobs = jobs.filter(status=status)
    if model:
        jobs = jobs.filter(model=model)
    if query:
        jobs = jobs.filter(prompt__icontains=query)
    return jobs.order_by("-created_at", "-pk")


def job_models_for_user(*, user) -> list[str]:
    """The models the user's own jobs used, for the gallery's model filter: it offers what they
    can find, including models since dropped from the catalog."""
    models = Job.objects.filter(owner=user, deleted_at__isnull=True).values_list("model", flat=True)
    return list(models.distinct().order_by("model"))


def jobs_selected_by_owner(*, user, job_ids):
    """The user's own jobs among `job_ids`, for bulk actions that destroy or hand over files.
    Anyone else's id, staff included, is simply not there; so are deleted and unknown ones."""
    jobs = Job.objects.filter(owner=user, deleted_at__isnull=True, pk__in=job_ids)
    return jobs.order_by("-created_at", "-pk")


def job_get_shared(*, token: str) -> Job:
    """The job behind a share link, for anyone holding it. 404 for an unknown or revoked token,
    and for a job that is deleted or not a finished video, so a dead link says nothing.

    A unique index on share_token answers it; the token's 256 random bits are the secret."""
    jobs = Job.objects.filter(status=Job.Status.SUCCEEDED, deleted_at__isnull=True)
    return get_object_or_404(jobs, share_token=token)


# API tokens ----------------------------------------------------------------------------------


def api_tokens_for_user(*, user):
    """The user's own tokens, revoked ones included, newest first (apitoken_user_created)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def api_token_for_key(*, key: str) -> ApiToken | None:
    """The live token whose key this is, with its user, or None: unknown, revoked, or its user
    deactivated. One query on the unique key_hash index."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=ApiToken.hash_key(key), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    return token
