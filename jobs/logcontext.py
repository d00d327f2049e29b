"""Which job a log line is about: the job_id that videostudio/logs.py's JSON lines carry.

In production every process (gunicorn, the three Celery workers of each host, beat) writes to
stdout, and a log shipper collects the lines of every host. `job_id` on each line about a job is
what lets an operator pull one job's story out of all of them: the page requests that touched it,
the claim, the paid call, the store, the poster, and Celery's own "Task ... received/succeeded"
lines.

The job comes from a context variable, set while a web request handles a job
(JobContextMiddleware, from the view's `job_id` URL argument) and while a Celery task about a job
runs (enter_job and leave_job, on Celery's task signals). A context variable, not a global:
gunicorn and the generate worker run many requests and tasks at once on threads, and each thread
must see only its own job. JobsConfig.ready() connects the signals (connect_signals).

settings.LOGGING names JobIdFilter by its path, so this module is imported when logging is set
up, before the apps are: it imports no model.
"""

import ast
import contextvars
import inspect
import logging

from celery.signals import task_postrun, task_prerun
from django.core.signals import request_finished

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


def forget_the_requests_job(**kwargs) -> None:
    current_job_id.set(None)


# While a task runs, every line logged names its job, Celery's own "Task ... succeeded/failed"
# lines included: Celery sends these signals around them, in the thread that runs the task. Each
# task sets the job (None for sweep and sync_catalog) and puts back what was there, so a thread of
# the generate worker's pool never carries one job's id into the next task it runs.
_job_tokens = {}


def enter_job(task_id, task, args, kwargs, **_):
    _job_tokens[task_id] = current_job_id.set(job_id_argument(task.run, args, kwargs))


def leave_job(task_id, **_):
    token = _job_tokens.pop(task_id, None)
    if token is not None:
        current_job_id.reset(token)


def connect_signals() -> None:
    """Hook the above to Django's and Celery's signals, once (JobsConfig.ready)."""
    request_finished.connect(forget_the_requests_job, dispatch_uid="jobs.logcontext.forget")
    task_prerun.connect(enter_job, dispatch_uid="jobs.logcontext.enter_job")
    task_postrun.connect(leave_job, dispatch_uid="jobs.logcontext.leave_job")
