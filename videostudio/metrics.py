"""GET /metrics: the studio's figures for Prometheus (README, "Metrics").

A scrape answers with two kinds of figure:

- **Events**, counted by the processes as they happen (jobs/metrics.py): provider calls, their
  latency and outcome, spend, the studio's own overhead, jobs ended. With
  PROMETHEUS_MULTIPROC_DIR set, every process of the host (gunicorn's workers; under
  `make run` the Celery workers too) writes its values to files there, and the scrape adds them
  up (prometheus_client's MultiProcessCollector). A worker host on a machine or container of
  its own serves its processes' events itself (`manage.py runworker`, METRICS_WORKER_PORT).
- **The database's and Redis' figures**, read at scrape time by StudioCollector, on the web
  only: jobs live by state, queue depth per Celery queue, the oldest queued job's age, unknown
  outcomes waiting for reconciliation, emails and webhooks waiting, each team's budget left.
  Nine indexed queries and one Redis pipeline (jobs/selectors/metrics.py says which index
  each uses); `videostudio_metrics_collect_seconds` reports what they took.

Who may scrape (`access_refusal`): from METRICS_ALLOWED_NETWORKS, when set (403 otherwise), and
with `Authorization: Bearer METRICS_TOKEN`, when set (401 otherwise). With neither set, only
loopback may, and in production nobody: the studio will not serve its figures unprotected.

Like /healthz, it is answered before host validation and sessions
(videostudio.health.HealthCheckMiddleware): Prometheus asks for the container by its service
name, and the answer builds no link.
"""

import hmac
import ipaddress
import logging
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import redis
from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from videostudio.metrics_dir import multiprocess_dir

logger = logging.getLogger(__name__)

PATH = "/metrics"
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
# Seconds Redis may take to answer the queue-depth pipeline: a scrape must stay well inside
# Prometheus' own timeout (10 s by default).
REDIS_TIMEOUT = 2
# kombu's Redis transport keeps a queue's messages in one list per priority step: the queue's
# own name for priority 0, then the name, this separator and the step.
KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)


# --- Who may scrape ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str
    headers: dict = field(default_factory=dict)


def access_refusal(*, client_ip: str | None, authorization: str) -> Refusal | None:
    """Why this scrape is refused, or None when it may go ahead.

    1. Neither a token nor networks configured: in production, refused (403), since the figures
       (teams, spend, queue depth) are not for everyone; elsewhere, loopback only.
    2. Networks (configured, or loopback by default): the client's address must be in one (403).
    3. A token configured: the request must carry it as a bearer token (401).
    """
    token = settings.METRICS_TOKEN
    networks = settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        if settings.PRODUCTION:
            return Refusal(
                HTTPStatus.FORBIDDEN,
                "Metrics are not served unprotected in production: set METRICS_TOKEN or "
                "METRICS_ALLOWED_NETWORKS (README, Metrics).\n",
            )
        networks = LOOPBACK
    if networks and not _address_in(client_ip, networks):
        return Refusal(HTTPStatus.FORBIDDEN, "Metrics are not served to this address.\n")
    if token and not _bearer_matches(authorization, token):
        return Refusal(
            HTTPStatus.UNAUTHORIZED,
            "Metrics need the bearer token set in METRICS_TOKEN.\n",
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return None


def _address_in(client_ip: str | None, networks) -> bool:
    try:
        address = ipaddress.ip_address(client_ip or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
    return any(address.version == net.version and address in net for net in networks)


def _bearer_matches(authorization: str, token: str) -> bool:
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


# --- What a scrape reads -------------------------------------------------------------------------


def celery_queues() -> list[str]:
    """Every queue the studio's tasks go to (settings' routes and the default queue)."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    return sorted(routed | {settings.CELERY_TASK_DEFAULT_QUEUE})


class StudioCollector:
    """The database's and Redis' figures, read at each scrape (see the module docstring)."""

    def collect(self):
        started = time.perf_counter()
        yield from self._database()
        yield from self._queues()
        yield GaugeMetricFamily(
            "videostudio_metrics_collect_seconds",
            "Time this scrape took to read the database and Redis.",
            value=time.perf_counter() - started,
        )

    def _database(self):
        from jobs.selectors import metrics as reads

        try:
            now = timezone.now()
            live = reads.live_jobs_by_state()
            oldest = reads.oldest_queued_age_seconds(now=now)
            unknown, possible = reads.unknown_outcomes_pending()
            emails = reads.emails_pending()
            webhooks = reads.webhooks_pending_by_kind()
            budgets = reads.team_budgets(now=now)
            teams = reads.team_names()
        except Exception as exc:  # whatever the driver or the pool raises: say "down", not 500
            logger.warning("metrics: database unreachable (%s)", type(exc).__name__)
            yield _gauge("videostudio_database_up", "1 when the scrape could read the database.", 0)
            return
        yield _gauge("videostudio_database_up", "1 when the scrape could read the database.", 1)
        jobs = GaugeMetricFamily(
            "videostudio_jobs",
            "Jobs queued, running (calling the provider) or storing their video, now.",
            labels=["state"],
        )
        for state, count in live.items():
            jobs.add_metric([state], count)
        yield jobs
        yield _gauge(
            "videostudio_queued_job_oldest_age_seconds",
            "Seconds since the oldest job still queued was submitted (0 with none).",
            oldest,
        )
        yield _gauge(
            "videostudio_unknown_outcome_jobs",
            "Jobs whose provider call had an unknown outcome, waiting for reconciliation.",
            unknown,
        )
        yield _gauge(
            "videostudio_unknown_outcome_possible_cost_usd",
            "The most those jobs may have cost (each model's top price).",
            float(possible),
        )
        yield _gauge(
            "videostudio_emails_pending", "Emails waiting to be sent (retries included).", emails
        )
        pending = GaugeMetricFamily(
            "videostudio_webhooks_pending",
            "Webhook deliveries waiting or being sent, by kind (job, budget_alert).",
            labels=["kind"],
        )
        for kind, count in webhooks.items():
            pending.add_metric([kind], count)
        yield pending
        remaining = GaugeMetricFamily(
            "videostudio_team_budget_remaining_usd",
            "What a team may still spend in its budget's current period (limit less spent, "
            "unknown outcomes' possible costs and live jobs' holds). Teams with a limit only.",
            labels=["team"],
        )
        limits = GaugeMetricFamily(
            "videostudio_team_budget_limit_usd",
            "A team's budget per period, for teams with a limit.",
            labels=["team"],
        )
        for budget in budgets:
            remaining.add_metric([budget.team_id], float(budget.remaining))
            limits.add_metric([budget.team_id], float(budget.limit))
        yield remaining
        yield limits
        info = GaugeMetricFamily(
            "videostudio_team_info",
            "1 for each team: its id (the team label elsewhere) and its current name.",
            labels=["team", "name"],
        )
        for team_id, name in teams.items():
            info.add_metric([team_id, name], 1)
        yield info

    def _queues(self):
        queues = celery_queues()
        from videostudio.celery import app as celery_app

        # The broker the studio sends its jobs to (REDIS_URL), as celery itself reads it.
        depths = _queue_depths(celery_app.conf.broker_url, queues)
        yield _gauge(
            "videostudio_redis_up", "1 when the scrape could read the broker.", int(bool(depths))
        )
        if not depths:
            return
        family = GaugeMetricFamily(
            "videostudio_queue_messages",
            "Messages waiting in each Celery queue (Redis list lengths, every priority).",
            labels=["queue"],
        )
        for queue in queues:
            family.add_metric([queue], depths[queue])
        yield family


def _queue_depths(url: str, queues: list[str]) -> dict[str, int]:
    """Each queue's messages, in one pipeline; {} when Redis does not answer."""
    keys = {
        queue: [
            queue if step == 0 else f"{queue}{KOMBU_PRIORITY_SEPARATOR}{step}"
            for step in KOMBU_PRIORITY_STEPS
        ]
        for queue in queues
    }
    client = redis.Redis.from_url(
        url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
    )
    try:
        pipe = client.pipeline(transaction=False)
        for names in keys.values():
            for name in names:
                pipe.llen(name)
        lengths = iter(pipe.execute())
    except redis.RedisError as exc:
        logger.warning("metrics: redis unreachable (%s)", type(exc).__name__)
        return {}
    finally:
        client.close()
    return {queue: sum(next(lengths) for _ in names) for queue, names in keys.items()}


def _gauge(name: str, documentation: str, value) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class _ThisProcess:
    """This process's own event metrics, when multi-process mode is off."""

    def collect(self):
        yield from REGISTRY.collect()


def scrape_registry(*, studio: bool) -> CollectorRegistry:
    """What one scrape reads: every process's events (from the multi-process directory, or
    this process's own without one), and with `studio` the database's and Redis' figures."""
    # auto_describe off: registering must not run the collectors (the database queries) once
    # more just to learn their names.
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ThisProcess())
    if studio:
        registry.register(StudioCollector())
    return registry


# --- The web's endpoint --------------------------------------------------------------------------


@never_cache
@require_safe
def metrics(request):
    from jobs.security import client_ip

    refusal = access_refusal(
        client_ip=client_ip(request), authorization=request.META.get("HTTP_AUTHORIZATION", "")
    )
    if refusal is not None:
        return HttpResponse(
            refusal.message,
            status=refusal.status,
            content_type="text/plain; charset=utf-8",
            headers=refusal.headers,
        )
    body = generate_latest(scrape_registry(studio=True))
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


# --- A worker host's endpoint (manage.py runworker) ----------------------------------------------


def worker_metrics_app(environ, start_response):
    """The same /metrics for a worker host: its own processes' events, behind the same rule.
    The database's and Redis' figures are the web's alone, so that they are counted once."""
    if environ.get("PATH_INFO") != PATH:
        return _plain(start_response, HTTPStatus.NOT_FOUND, "Only /metrics is served here.\n")
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return _plain(start_response, HTTPStatus.METHOD_NOT_ALLOWED, "GET only.\n")
    refusal = access_refusal(
        client_ip=environ.get("REMOTE_ADDR"), authorization=environ.get("HTTP_AUTHORIZATION", "")
    )
    if refusal is not None:
        return _plain(start_response, refusal.status, refusal.message, refusal.headers)
    body = generate_latest(scrape_registry(studio=False))
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Cache-Control", "no-store")])
    return [body]


def _plain(start_response, status: int, message: str, headers: dict | None = None):
    phrase = HTTPStatus(status).phrase
    start_response(
        f"{status} {phrase}",
        [("Content-Type", "text/plain; charset=utf-8"), *(headers or {}).items()],
    )
    return [message.encode()]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass  # a scrape every few seconds is not worth a log line


def worker_metrics_serve(port: int, host: str = "0.0.0.0") -> WSGIServer:  # noqa: S104
    """Serve worker_metrics_app on a daemon thread; returns the server (shutdown() stops it)."""
    server = make_server(
        host, port, worker_metrics_app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
