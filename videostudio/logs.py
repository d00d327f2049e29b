"""What the studio writes about itself: log lines, one JSON object each, that name their job.

In production every process (gunicorn, the three Celery workers of each host, beat) writes to
stdout, and a log shipper collects the lines of every host. `job_id` on each line about a job is
what lets an operator pull one job's story out of all of them: the page requests that touched it,
the claim, the paid call, the store, the poster, and Celery's own "Task ... received/succeeded"
lines.

The job comes from a context variable, set while a web request handles a job
(JobContextMiddleware, from the view's `job_id` URL argument) and while a Celery task about a job
runs (jobs/tasks.py). A context variable, not a global: gunicorn and the generate worker run many
requests and tasks at once on threads, and each thread must see only its own job.
"""

import ast
import contextvars
import inspect
import json
import logging
import re
from datetime import UTC, datetime

from celery.signals import setup_logging
from django.core.signals import request_finished
from django.dispatch import receiver
from django.views.debug import SafeExceptionReporterFilter

# The job the running request or task is about; None outside one.
current_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_job_id", default=None
)

# The services' convention for a line about one job: "job %s: ..." with the job id first.
JOB_MESSAGE_PREFIX = "job %s"


def job_id_argument(function, args, kwargs) -> str | None:
    """The `job_id` that a task function would receive from these arguments, if it takes one.

    Binding to the signature, rather than reading args[0], keeps this right for a task called
    with `job_id=` as a keyword and for one whose first argument is something else.
    """
    try:
        bound = inspect.signature(function).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return None
    job_id = bound.arguments.get("job_id")
    return None if job_id is None else str(job_id)


class JobIdFilter(logging.Filter):
    """Adds `job_id` to every record that is about a job, so the formatter can write it.

    In order of precedence: an explicit `extra={"job_id": ...}`; the job a "job %s: ..." message
    names (so a line about another job, e.g. from a view acting on several, names the right one);
    the request's or task's job; and, for Celery's "Task ... received" line, which the worker
    logs before any task context exists, the job_id among the task's arguments.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = (
                _job_named_in_message(record)
                or current_job_id.get()
                or _job_of_celery_record(record)
            )
        return True


def _job_named_in_message(record: logging.LogRecord) -> str | None:
    if (
        isinstance(record.msg, str)
        and record.msg.startswith(JOB_MESSAGE_PREFIX)
        and isinstance(record.args, tuple)
        and record.args
    ):
        return str(record.args[0])
    return None


def _job_of_celery_record(record: logging.LogRecord) -> str | None:
    """Celery passes each task line's details as `extra={"data": {...}}` for log handlers: the
    task's name and the repr of its arguments."""
    data = getattr(record, "data", None)
    if not isinstance(data, dict) or "name" not in data:
        return None
    from celery import current_app

    task = current_app.tasks.get(data["name"])
    if task is None:
        return None
    try:
        args = ast.literal_eval(data.get("args") or "()")
        kwargs = ast.literal_eval(data.get("kwargs") or "{}")
    except (ValueError, SyntaxError):  # a repr Celery shortened with "..."
        return None
    if not isinstance(args, list | tuple) or not isinstance(kwargs, dict):
        return None
    return job_id_argument(task.run, args, kwargs)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (ISO 8601, UTC), level, logger, message, job_id when known,
    and the exception's traceback when there is one. Standard library only."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = getattr(record, "job_id", None)
        if job_id:
            line["job_id"] = str(job_id)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


def _iso_utc(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JobContextMiddleware:
    """Names the job a request is about, for every line logged while it is handled: the views
    that act on one job take it as the `job_id` URL argument.

    The job is forgotten when the request finishes (request_finished, sent when the server
    closes the response), not when this middleware returns: Django logs a 4xx or 5xx answer
    ("Not Found: /jobs/<id>/") after every middleware has returned, and a streamed video is
    sent after that.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        current_job_id.set(None)  # in case a request on this thread never finished
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if view_kwargs.get("job_id") is not None:
            current_job_id.set(str(view_kwargs["job_id"]))


@receiver(request_finished)
def _forget_the_requests_job(**kwargs) -> None:
    current_job_id.set(None)


@setup_logging.connect
def _celery_uses_djangos_logging(**kwargs) -> None:
    """With a receiver on this signal, Celery configures no logging of its own: no plain-text
    handler of its own on the task logger, no root level forced from `--loglevel`, no stdout
    swapped for a logger. Its records go through settings.LOGGING like everyone else's (the worker
    and beat set Django up, and so this module's import, before they set up logging)."""


# A password in a URL: scheme://user:PASSWORD@host.
URL_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^/@\s]+@")


class SecretUrlFilter(SafeExceptionReporterFilter):
    """Django's error reports hide settings named like KEY or PASSWORD, but not a password inside
    a URL, and in production REDIS_URL, CELERY_BROKER_URL, the cache's LOCATION and DATABASE_URL
    each carry one. This keeps the URL, which helps, and hides the password."""

    def cleanse_setting(self, key, value):
        value = super().cleanse_setting(key, value)
        if type(value) is str:  # not a lazy object that only claims to be one
            return URL_PASSWORD.sub(rf"\g<1>{self.cleansed_substitute}@", value)
        return value
