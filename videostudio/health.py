"""GET /healthz: can this web process serve? It can when it reaches the database; without Redis
it still serves, degraded (jobs wait in the database until Redis is back), and says so.

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
from http import HTTPStatus

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from videostudio.celery import app as celery_app

logger = logging.getLogger(__name__)

PATH = "/healthz"
# Seconds each check may take. A pooled database connection otherwise waits up to the pool's
# timeout (120 s, settings.py): the healthcheck must answer well inside its own timeout.
CHECK_TIMEOUT = 3


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
    """Answers /healthz before host validation, sessions and CSRF (see the module docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == PATH:
            return healthz(request)
        return self.get_response(request)
