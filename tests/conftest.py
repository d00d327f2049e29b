"""Shared fixtures: users, the simulator over a real socket, and a real Celery worker on Redis."""

import atexit
import os
import shutil
import tempfile
import uuid

import pytest
import redis
from axes.handlers.proxy import AxesProxyHandler
from django.core.cache import caches
from prometheus_client import values as prometheus_values

from jobs import imagerouter, services
from jobs.services import tokens
from simulator.testing import SimulatorProcess
from tests.helpers import TEST_BROKER_URL, running_worker
from tests.media import MEGABYTE
from videostudio.celery import app as celery_app

# TEST_BROKER_URL: the tests' own Redis database (tests/helpers.py).
# From the start, not only in the broker_url fixture: a test that commits a job without asking
# for a worker still sends its message, and it must not land in a developer's queue.
celery_app.conf.broker_url = TEST_BROKER_URL

# Prometheus' multi-process mode, as gunicorn and runworker run it (README, "Metrics"): this
# process, and every worker process a test starts, write their metrics to one directory of this
# run's own, which /metrics adds up. prometheus_client picked its in-process values when
# django.setup() imported it, before this file; no metric has a value yet (every one has
# labels, so none exists before its first use), so switching here is in time.
METRICS_DIR = tempfile.mkdtemp(prefix="videostudio-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR
prometheus_values.ValueClass = prometheus_values.MultiProcessValue()
atexit.register(shutil.rmtree, METRICS_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test stores videos and uploads in its own folder, never in var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def fresh_cache(settings):
    """Every test counts failed log-ins and submits from zero, in the test Redis database, under
    a prefix of its own (the counters expire on their own within minutes)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": TEST_BROKER_URL,
            "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        }
    }
    AxesProxyHandler.get_implementation(force=True)  # it keeps the cache it started with
    yield
    # Django never closes a Redis cache's connection pool, and each test makes a cache of its
    # own: without this the run would keep a socket open per test (over a thousand).
    for cache in caches.all(initialized_only=True):
        client = cache.__dict__.get("_cache")  # RedisCache's client, if it was made
        for pool in getattr(client, "_pools", {}).values():
            pool.disconnect()


@pytest.fixture
def fast_passwords(settings):
    """For a module that makes users in every test: hashing their passwords properly would be
    most of its run time. Ask for it before the users (usefixtures runs it first)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def upload_limits(settings):
    """The documented upload limits, whatever the environment says."""
    settings.UPLOAD_MAX_BYTES = 10 * MEGABYTE
    settings.UPLOAD_MAX_PIXELS = 40_000_000


@pytest.fixture(scope="session")
def simulator_process():
    # Short latency and keep-alive interval keep the suite fast while still exercising the
    # provider's wire behaviour (headers, spaces, then JSON).
    with SimulatorProcess(env={"SIM_LATENCY": "0.2", "SIM_KEEPALIVE_INTERVAL": "0.1"}) as sim:
        yield sim


@pytest.fixture
def simulator(simulator_process, settings):
    """The simulator, reset, with the studio's settings pointing at it."""
    simulator_process.reset()
    settings.IMAGEROUTER_BASE_URL = simulator_process.url
    settings.IMAGEROUTER_API_KEY = "test-key-" + "x" * 55
    yield simulator_process


@pytest.fixture
def client_for(simulator):
    """An ImageRouter client aimed at the simulator, with short timeouts."""

    def make(**overrides):
        options = {
            "base_url": simulator.url,
            "api_key": "test-key-" + "x" * 55,
            "connect_timeout": 2,
            "read_timeout": 5,
            "deadline": 20,
        }
        return imagerouter.ImageRouterClient(**{**options, **overrides})

    return make


@pytest.fixture
def catalog(simulator, db):
    services.catalog_sync()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture(scope="session")
def broker_url():
    redis.Redis.from_url(TEST_BROKER_URL).flushdb()
    celery_app.conf.broker_url = TEST_BROKER_URL
    return TEST_BROKER_URL


@pytest.fixture
def worker(broker_url, transactional_db, simulator):
    redis.Redis.from_url(broker_url).flushdb()
    with running_worker(broker_url) as started:
        yield started


# --- The API (/v1/): personal tokens, and a client that sends them as the provider's key ---


@pytest.fixture
def token_for():
    """token_for(user) -> the key of a new personal API token for `user`."""

    def make(user, name="script"):
        _, key = tokens.token_create(user=user, name=name)
        return key

    return make


@pytest.fixture
def alice_key(alice, token_for):
    return token_for(alice, "alice's script")


@pytest.fixture
def bob_key(bob, token_for):
    return token_for(bob, "bob's script")


@pytest.fixture
def api(client):
    """The Django test client speaking to /v1/ with a key: api.post(key, path, json=...)."""

    class Api:
        def get(self, key, path, **extra):
            return client.get(path, **_auth(key), **extra)

        def post(self, key, path, *, json=None, data=None, **extra):
            if json is not None:
                return client.post(
                    path, json, content_type="application/json", **_auth(key), **extra
                )
            return client.post(path, data or {}, **_auth(key), **extra)

    return Api()


def _auth(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}


# --- Email: a real SMTP server on loopback (tests/smtp.py) ----------------------------------


@pytest.fixture
def smtp_server(settings):
    """The studio's email goes to a real SMTP server on a free loopback port; `.mailbox` holds
    what it accepted. Stop and start it to play a server that is down."""
    from tests.redis_server import free_port
    from tests.smtp import SMTPServer

    server = SMTPServer(free_port()).start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    yield server
    server.stop()
