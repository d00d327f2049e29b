"""The job page's 2-s status poll, answered 204 while nothing has changed, for one query.

Every open job page asks every 2 s whether its job has changed, so with a thousand people
watching this is most of the studio's traffic. The poll's URL carries the version of the
fragment on the page (?v=, see fragment_version) and a poll pass (?p=, see poll_pass). While the
version is still current, the answer is 204 with no body, and htmx keeps the fragment as it is.

UnchangedPollMiddleware answers those polls near the top of the middleware stack with one query
(job_poll_state: the job, the user and the session's row, each by primary key) and no
read of the session's contents. Everything else takes the standard path through the whole stack
and the view, which redirects, answers 404, renders or answers 286 as before. bench/polling.py
measures both.

The poll pass is what lets it skip the session read. The page's view, which has just checked
the session the standard way, signs (with SECRET_KEY) the job, the session's key, the user and
the user's session auth hash. A session key only ever belongs to one log-in: Django's login,
logout and update_session_auth_hash all give the session a new key (or delete it), so what the
session said when the pass was made, it says for as long as its key lives. The fast path then
accepts strictly less than the standard path: a GET for an allowed host, whose session cookie
names a session row that exists and has not expired, with a pass signed for that session, that
job and that user with the password the user has now (a password change elsewhere makes it
void), of an active user who owns the job or is staff, whose job is live and still at the
version the poll names. A pass is worth nothing without its session's cookie, so a URL in a log
gives nobody anything.

SecurityMiddleware, which comes before, still redirects to HTTPS and adds HSTS and nosniff, and
videostudio.headers.SecurityHeadersMiddleware, first of all, adds the CSP and X-Frame-Options
that the skipped middleware would have (a few header assignments, measured by bench/polling.py).
"""

import functools
from dataclasses import dataclass
from http import HTTPStatus

import psycopg
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.models import Session
from django.core.exceptions import DisallowedHost, ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.http import HttpResponse
from django.urls import Resolver404, get_urlconf, resolve
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from jobs.models import Job, Membership
from jobs.numbers import parse_whole_number

# The one backend whose sessions the fast path vouches for; a page signed in by any other gets
# no pass, and its polls take the standard path.
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
# The engines that keep every session in the database, where the poll's query finds its row.
DATABASE_SESSION_ENGINES = {
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
}
STATUS_URL_NAME = "jobs:status"
SIGNING_SALT = "jobs.polling.poll_pass"


def fragment_version(status: str, attempt: int) -> str:
    """Names what a live job's status fragment shows, so that a poll can say which one it holds.

    The status and the attempt are enough: every transition of a live job changes one of them
    (a claim adds an attempt; the wait to retry, with its not_before and error, is QUEUED again
    after RUNNING), the prompt and id never change, and the running timer is job.js's. So two
    polls that see the same version would render the same fragment, and the second can be
    answered 204. A terminal job needs none: it always answers 286.
    """
    return f"{status}.{attempt}"


def poll_pass(request, job) -> str:
    """The pass for the poll of `job` by the person signed in on `request` ("" if their polls
    must take the standard path): their user id and a signature, "<user id>.<signature>".
    Call it only after the session has been checked the standard way (a view behind
    login_required), since the pass vouches for what request.user says now."""
    session = request.session
    if not (
        settings.SESSION_ENGINE in DATABASE_SESSION_ENGINES
        and session.session_key
        and session.get(BACKEND_SESSION_KEY) == MODEL_BACKEND
        and request.user.is_authenticated
    ):
        return ""
    user = request.user
    signature = _signature(job.pk, session.session_key, user.pk, user.get_session_auth_hash())
    return f"{user.pk}.{signature}"


def _signature(job_id, session_key: str, user_id, session_auth_hash: str) -> str:
    value = f"{job_id}|{session_key}|{user_id}|{session_auth_hash}"
    # 128 bits of HMAC-SHA256 keep the URL short and are far beyond guessing.
    return salted_hmac(SIGNING_SALT, value, algorithm="sha256").hexdigest()[:32]


@functools.lru_cache(maxsize=4096)
def _job_id_in_status_path(path: str, urlconf: str):
    """The job id in a status poll's path, or None for any other path. Kept per path and URLconf
    (a page polls the same URL every 2 s; resolving it anew costs 15 µs, 4% of a poll)."""
    try:
        match = resolve(path, urlconf)
    except Resolver404:
        return None
    return match.kwargs["job_id"] if match.view_name == STATUS_URL_NAME else None


class UnchangedPollMiddleware:
    """Answers an unchanged status poll with 204 before the rest of the stack runs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "GET" and request.GET.get("v") and request.GET.get("p"):
            job_id = self._status_job_id(request)
            if job_id is not None and self._is_unchanged(request, job_id):
                return HttpResponse(status=HTTPStatus.NO_CONTENT)
        return self.get_response(request)

    def _status_job_id(self, request):
        if not request.path_info.endswith("/status/"):  # cheaply passes every other URL on
            return None
        return _job_id_in_status_path(request.path_info, get_urlconf() or settings.ROOT_URLCONF)

    def _is_unchanged(self, request, job_id) -> bool:
        try:
            request.get_host()  # the standard path answers a host not allowed with 400
        except DisallowedHost:
            return False
        if settings.SESSION_ENGINE not in DATABASE_SESSION_ENGINES:
            return False
        if MODEL_BACKEND not in settings.AUTHENTICATION_BACKENDS:
            return False
        session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        user_id, _, signature = request.GET["p"].partition(".")
        # The user's primary key is an integer (BigAutoField): anything that is not one within
        # the column's range would be an error from the database, not a user who is missing.
        if not (session_key and parse_whole_number(user_id) and signature):
            return False
        state = job_poll_state(job_id=job_id, user_id=user_id, session_key=session_key)
        if state is None or state.status in Job.TERMINAL:
            return False
        if fragment_version(state.status, state.attempt) != request.GET["v"]:
            return False
        user_model = get_user_model()
        user = user_model(
            pk=user_model._meta.pk.to_python(user_id),
            password=state.password,
            is_active=state.is_active,
            is_staff=state.is_staff,
        )
        if not ModelBackend().user_can_authenticate(user):
            return False
        expected = _signature(job_id, session_key, user.pk, user.get_session_auth_hash())
        if not constant_time_compare(signature, expected):
            return False
        # The same rule as selectors.visible_to: the owner of a personal job, the current
        # members of a team's, and staff.
        if user.is_staff or state.in_team:
            return True
        return state.team_id is None and state.owner_id == user.pk


# The fast path's one query ------------------------------------------------------------------------


@dataclass(frozen=True)
class PollState:
    """What an unchanged status poll needs: the job's owner, team, status and attempt, and the
    polling user's password hash (for the poll pass's check), is_active and is_staff, and
    whether they are a member of the job's team."""

    owner_id: int
    status: str
    attempt: int
    password: str
    is_active: bool
    is_staff: bool
    team_id: object = None
    in_team: bool = False


@functools.cache
def _poll_sql(vendor: str) -> str:
    """The fast path's query for this database vendor, built once from the models' _meta."""
    qn = connection.ops.quote_name
    job, user, session = Job._meta, get_user_model()._meta, Session._meta
    member = Membership._meta

    def column(meta, name):
        return qn(meta.get_field(name).column)

    # Only names from _meta go into the text; the values are the query's parameters.
    return (
        f"SELECT j.{column(job, 'owner')}, j.{column(job, 'status')},"  # noqa: S608
        f" j.{column(job, 'attempt')}, u.{column(user, 'password')},"
        f" u.{column(user, 'is_active')}, u.{column(user, 'is_staff')},"
        f" j.{column(job, 'team')},"
        f" EXISTS (SELECT 1 FROM {qn(member.db_table)} m"
        f" WHERE m.{column(member, 'team')} = j.{column(job, 'team')}"
        f" AND m.{column(member, 'user')} = u.{column(user, 'id')})"
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
    owner_id, status, attempt, password, is_active, is_staff, team_id, in_team = row
    return PollState(
        owner_id,
        status,
        attempt,
        password,
        bool(is_active),
        bool(is_staff),
        team_id,
        bool(in_team),
    )
