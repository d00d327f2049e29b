"""GET /healthz: can this web process serve? It can when it reaches the database; without Redis
it still serves, degraded (jobs wait in the database until Redis is back), and says so.

GET /healthz/full: does the whole studio work? The database, Redis, the video storage (a file
written and deleted), and a worker answering for each Celery queue. It is a separate path, not
a change to /healthz, because a load balancer that asked it would take every web process out
when one worker host stops, although the web still serves pages and accepts jobs (they wait in
the database). Point an uptime monitor or an alert at it; keep the load balancer on /healthz.
Asking the workers is a broadcast that waits WORKER_TIMEOUT for replies, so the storage and
worker answers are kept FULL_CHECK_TTL seconds per process: a flood of requests costs one
broadcast and one probe file per process per FULL_CHECK_TTL, not one each.

docker compose's healthcheck and a load balancer ask it every few seconds, from inside the
container or the private network, with whatever Host header they have. So it is answered by
HealthCheckMiddleware, right after SecurityMiddleware and before anything that validates the
Host (CommonMiddleware), reads a session or checks CSRF:

- Skipping host validation here is safe: Host is checked to stop forged hosts getting into the
  links a page or an e-mail builds, and this answer builds none; it says only "ok" or which part
  is down, nothing that varies with the request.
- The alternative, a healthcheck that sends one of DJANGO_ALLOWED_HOSTS as its Host, ties the
  compose file to the deployment's host names (and fails on a wildcard such as .example.com).
- SECURE_SSL_REDIRECT exempts the path (settings.SECURE_REDIRECT_EXEMPT): the check speaks plain
  HTTP to the container, where a redirect to https would read as "down".

The answer never carries an error's text: names, never URLs, which hold passwords in production.
"""

import logging
import threading
import time
import uuid
from http import HTTPStatus

import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from videostudio.celery import app as celery_app

logger = logging.getLogger(__name__)

PATH = "/healthz"
FULL_PATH = "/healthz/full"
# Seconds each check may take. A pooled database connection otherwise waits up to the pool's
# timeout (120 s, settings.py): the healthcheck must answer well inside its own timeout.
CHECK_TIMEOUT = 3
# Seconds the workers have to answer /healthz/full's broadcast (every reply is awaited that long).
WORKER_TIMEOUT = 1.5
# Seconds /healthz/full's storage and worker answers are reused by the process.
FULL_CHECK_TTL = 10


@never_cache
@require_safe
def healthz(request):
    """What this web process can do, naming each part:

    - 200 {"status": "ok", "database": "ok", "redis": "ok"}: everything answers;
    - 200 {"status": "degraded", ..., "redis": "unreachable"}: pages, sign-in and submits still
      work (sessions are in the database, counters fall back to memory, a submitted job waits
      in the database for the sweeper), so a load balancer must keep sending traffic here;
    - 503 {"status": "unavailable", "database": "unreachable", ...}: nothing can be served.
    """
    checks = {"database": _database_answers(), "redis": _redis_answers()}
    body = {name: "ok" if ok else "unreachable" for name, ok in checks.items()}
    if not checks["database"]:
        return JsonResponse(
            {"status": "unavailable", **body}, status=HTTPStatus.SERVICE_UNAVAILABLE
        )
    return JsonResponse({"status": "ok" if all(checks.values()) else "degraded", **body})


@never_cache
@require_safe
def healthz_full(request):
    """Every part the studio needs, naming each:

    - 200 {"status": "ok", "database": "ok", "redis": "ok", "storage": "ok",
      "workers": {"celery": "ok", "generate": "ok", "mail": "ok", "poster": "ok", "store": "ok"}};
    - 503 {"status": "unavailable", ...} naming what is "unreachable" and each queue with
      "no worker" that answered (all of them while Redis is down: the workers cannot be asked).
    """
    from videostudio.metrics import celery_queues

    checks = {"database": _database_answers(), "redis": _redis_answers()}
    storage, served = _full_checks(redis_up=checks["redis"])
    checks["storage"] = storage
    body = {name: "ok" if ok else "unreachable" for name, ok in checks.items()}
    workers = {queue: "ok" if queue in served else "no worker" for queue in celery_queues()}
    healthy = all(checks.values()) and all(answer == "ok" for answer in workers.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **body, "workers": workers},
        status=HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE,
    )


_full_lock = threading.Lock()
_full_answer: dict = {}


def full_check_forget() -> None:
    """Drop the kept storage and worker answers (a test that changes what they would be)."""
    with _full_lock:
        _full_answer.clear()


def _full_checks(*, redis_up: bool) -> tuple[bool, frozenset[str]]:
    """(storage answers, the queues a worker answered for), kept FULL_CHECK_TTL seconds. One
    thread asks at a time; the others wait for its answer rather than ask again."""
    with _full_lock:
        kept = _full_answer.get(redis_up)
        if kept is not None and time.monotonic() - kept[0] < FULL_CHECK_TTL:
            return kept[1], kept[2]
        storage = _storage_answers()
        served = _queues_served() if redis_up else frozenset()
        _full_answer[redis_up] = (time.monotonic(), storage, served)
        return storage, served


def _storage_answers() -> bool:
    """A small file written to the video storage and deleted: what a worker does with a video
    (local disk or S3 alike)."""
    try:
        name = default_storage.save(f"healthz/{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
        default_storage.delete(name)
    except Exception as exc:  # every backend raises its own errors (OSError, botocore's, ...)
        _log_failure("storage", exc)
        return False
    return True


def _queues_served() -> frozenset[str]:
    """The queues that at least one worker consumes, among the workers that answer a broadcast
    within WORKER_TIMEOUT."""
    try:
        replies = celery_app.control.inspect(timeout=WORKER_TIMEOUT).active_queues() or {}
    except Exception as exc:  # the broker went away between the checks
        _log_failure("workers", exc)
        return frozenset()
    return frozenset(queue["name"] for queues in replies.values() for queue in queues or ())


def _database_answers() -> bool:
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        pool = getattr(connection, "pool", None)  # PostgreSQL with DATABASE_POOL_SIZE
        if pool is not None:
            pool.open()
            with pool.connection(timeout=CHECK_TIMEOUT) as pooled:
                pooled.execute("SELECT 1")
        else:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
    except Exception as exc:  # whatever the driver or the pool raises, the answer is "down"
        _log_failure("database", exc)
        return False
    return True


def _redis_answers() -> bool:
    """Every Redis the web tier uses: the cache (sessions, log-in and submit counters) and the
    broker it sends jobs to. In production both are REDIS_URL."""
    try:
        for url in _redis_urls():
            client = redis.Redis.from_url(
                url, socket_connect_timeout=CHECK_TIMEOUT, socket_timeout=CHECK_TIMEOUT
            )
            try:
                client.ping()
            finally:
                client.close()
    except Exception as exc:
        _log_failure("redis", exc)
        return False
    return True


def _redis_urls() -> list[str]:
    urls = []
    for cache in settings.CACHES.values():
        if cache["BACKEND"].endswith("RedisCache"):
            location = cache["LOCATION"]
            urls.extend([location] if isinstance(location, str) else location)
    urls.append(celery_app.conf.broker_url)
    return list(dict.fromkeys(url for url in urls if url.startswith(("redis://", "rediss://"))))


def _log_failure(part: str, exc: Exception) -> None:
    # The exception's class only: a driver's message may quote a connection string.
    logger.warning("healthz: %s unreachable (%s)", part, type(exc).__name__)


class HealthCheckMiddleware:
    """Answers /healthz, /healthz/full and /metrics before host validation, sessions and CSRF
    (see the module docstring, and videostudio/metrics.py for who may read /metrics)."""

    def __init__(self, get_response):
        from videostudio.metrics import PATH as METRICS_PATH
        from videostudio.metrics import metrics

        self.get_response = get_response
        self.answers = {PATH: healthz, FULL_PATH: healthz_full, METRICS_PATH: metrics}

    def __call__(self, request):
        answer = self.answers.get(request.path_info)
        if answer is not None:
            return answer(request)
        return self.get_response(request)
