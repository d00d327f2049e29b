"""The job page's 2-s status poll, answered 204 while nothing has changed, for one query.

Every open job page asks every 2 s whether its job has changed, so with a thousand people
watching this is most of the studio's traffic. The poll's URL carries the version of the
fragment on the page (?v=, see fragment_version). While it is still current, the answer is 204
with no body, and htmx keeps the fragment as it is.

UnchangedPollMiddleware answers those polls near the top of the middleware stack, with one
query (selectors.job_poll_state: the job and the user, by primary key) and one read of the
session. Everything else takes the standard path through the whole stack and the view, which
redirects, answers 404, renders or answers 286 as before. bench/polling.py measures both.

It accepts strictly less than the standard path: a GET for an allowed host, with a session
that django.contrib.auth.get_user would accept (the ModelBackend's, whose hash matches the
user's password hash as it is now), of an active user who owns the job or is staff, whose job is
live and still at the version the poll names. A 204 carries no content, so the response headers
that the skipped middleware would add (the CSP, X-Frame-Options) have nothing to apply to;
SecurityMiddleware, which comes first, still redirects to HTTPS and adds HSTS and nosniff.
"""

from http import HTTPStatus
from importlib import import_module

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import DisallowedHost
from django.http import HttpResponse
from django.urls import Resolver404, resolve
from django.utils.crypto import constant_time_compare

from jobs import selectors
from jobs.models import Job

# The one backend whose sessions the fast path checks by itself; for any other, it leaves the
# check to django.contrib.auth.get_user, on the standard path.
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
STATUS_URL_NAME = "jobs:status"


def fragment_version(status: str, attempt: int) -> str:
    """Names what a live job's status fragment shows, so that a poll can say which one it holds.

    The status and the attempt are enough: every transition of a live job changes one of them
    (a claim adds an attempt; the wait to retry, with its not_before and error, is QUEUED again
    after RUNNING), the prompt and id never change, and the running timer is job.js's. So two
    polls that see the same version would render the same fragment, and the second can be
    answered 204. A terminal job needs none: it always answers 286.
    """
    return f"{status}.{attempt}"


class UnchangedPollMiddleware:
    """Answers an unchanged status poll with 204 before the rest of the stack runs."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore

    def __call__(self, request):
        if request.method == "GET" and request.GET.get("v"):
            job_id = self._status_job_id(request)
            if job_id is not None and self._is_unchanged(request, job_id):
                return HttpResponse(status=HTTPStatus.NO_CONTENT)
        return self.get_response(request)

    def _status_job_id(self, request):
        if not request.path_info.endswith("/status/"):  # cheaply passes every other URL on
            return None
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return None
        return match.kwargs["job_id"] if match.view_name == STATUS_URL_NAME else None

    def _is_unchanged(self, request, job_id) -> bool:
        try:
            request.get_host()  # the standard path answers a host not allowed with 400
        except DisallowedHost:
            return False
        if MODEL_BACKEND not in settings.AUTHENTICATION_BACKENDS:
            return False
        session = self.session_store(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
        user_id = session.get(SESSION_KEY)
        session_hash = session.get(HASH_SESSION_KEY)
        if not (user_id and session_hash and session.get(BACKEND_SESSION_KEY) == MODEL_BACKEND):
            return False
        state = selectors.job_poll_state(job_id=job_id, user_id=user_id)
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
        if not constant_time_compare(session_hash, user.get_session_auth_hash()):
            return False
        return state.owner_id == user.pk or user.is_staff
