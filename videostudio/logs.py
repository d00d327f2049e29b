"""How the studio writes its log lines: one JSON object each in production (JsonFormatter), and
passwords kept out of Django's error reports (SecretUrlFilter). Which job a line is about comes
from jobs/logcontext.py (JobIdFilter, named in settings.LOGGING)."""

import json
import logging
import re
from datetime import UTC, datetime

from celery.signals import setup_logging
from django.views.debug import SafeExceptionReporterFilter


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
