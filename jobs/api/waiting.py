"""The synchronous answer: headers at once, a space every few seconds while the job is live,
then the JSON, as the provider answers. And the cap on how many such waits a process holds.

A waiting request holds one of the web server's threads for as long as the job takes (minutes
for real models). gunicorn runs 2 processes of 4 threads each, so without a cap four scripts
could take every thread of a process and the pages would stop answering. Past
GATEWAY_MAX_WAITS_PER_PROCESS the request is refused at once with 429, before any job is made,
and told to use ?async=true, which answers in milliseconds.
"""

import json
import logging
import threading
import time

from django.conf import settings
from django.db import connection

from jobs.models import Job

from . import results
from .errors import INTERNAL, error_body

logger = logging.getLogger(__name__)

# The provider writes a space every 3 s; proxies that time out an idle connection see traffic.
KEEPALIVE_SECONDS = 3.0
# How often the row is read while waiting: one primary-key query.
POLL_SECONDS = 0.5


class WaitSlots:
    """A per-process count of synchronous waits, checked against the setting as it is now."""

    def __init__(self):
        self._lock = threading.Lock()
        self._taken = 0

    def take(self) -> bool:
        with self._lock:
            if self._taken >= settings.GATEWAY_MAX_WAITS_PER_PROCESS:
                return False
            self._taken += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._taken = max(0, self._taken - 1)

    @property
    def taken(self) -> int:
        return self._taken


wait_slots = WaitSlots()


class WaitingBody:
    """The streamed body of a synchronous generation, holding one wait slot until it is closed.

    An object with close() rather than a bare generator: Django's response calls close() when
    the server is done with it (finished, or the client went away), and a generator that never
    started would not run its `finally`, leaking the slot. The job carries on either way, as at
    the provider, and its video lands in My videos.
    """

    def __init__(self, request, job: Job):
        self._request = request
        self._job_id = job.pk
        self._released = False
        self._chunks = self._generate()

    def __iter__(self):
        return self._chunks

    def close(self) -> None:
        self._chunks.close()
        if not self._released:
            self._released = True
            wait_slots.give_back()

    def _generate(self):
        """1. A space at once, which sends the 200 and its headers (a WSGI server sends them
           with the first bytes of the body).
        2. Read the row every POLL_SECONDS, and write a space every KEEPALIVE_SECONDS, until the
           job ends or GATEWAY_WAIT_SECONDS pass.
        3. Write the result, or the error body (still 200: the headers are gone).
        """
        yield b" "
        deadline = time.monotonic() + settings.GATEWAY_WAIT_SECONDS
        last_space = time.monotonic()
        try:
            while True:
                job = Job.objects.filter(pk=self._job_id).first()
                _release_connection()
                if job is None or job.is_terminal:
                    break
                now = time.monotonic()
                if now >= deadline:
                    message = (
                        f"The video is still being made after {settings.GATEWAY_WAIT_SECONDS} s. "
                        "Fetch it later by its id (GET /v1/jobs/{id})."
                    )
                    yield self._error(message, code="wait_timeout")
                    return
                if now - last_space >= KEEPALIVE_SECONDS:
                    last_space = now
                    yield b" "
                time.sleep(POLL_SECONDS)
        except Exception:
            logger.exception("job %s: the synchronous wait failed", self._job_id)
            message = "The studio failed while waiting for the job; fetch it by its id."
            yield self._error(message, code="wait_failed")
            return
        if job is None or job.deleted_at is not None:
            yield self._error("The job was deleted.", code="deleted")
            return
        if job.status != Job.Status.SUCCEEDED:
            body = results.failure(job)
            body["error"]["job_id"] = str(job.pk)
            yield json.dumps(body).encode()
            return
        yield from results.success_chunks(
            self._request, job, extra={"id": str(job.pk), "team": results.team_of(job)}
        )

    def _error(self, message: str, *, code: str) -> bytes:
        return json.dumps(
            error_body(message, INTERNAL, code=code, job_id=str(self._job_id))
        ).encode()


def _release_connection() -> None:
    """Hand the database connection back between reads: a wait lasts minutes and needs none
    meanwhile (the pool is small, DATABASE_POOL_SIZE). Inside a test's transaction it stays."""
    if not connection.in_atomic_block:
        connection.close()
