"""GET /healthz: what docker compose and a load balancer ask the web tier every few seconds."""

import json
import socket

import pytest
from django.urls import reverse

from tests.helpers import TEST_BROKER_URL, run_with_settings
from videostudio.celery import app as celery_app

HEALTHZ = "/healthz"
PASSWORD = "hunter2-redis-password"


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused at once, for real."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_it_is_200_with_a_small_json_body_when_the_database_and_redis_answer(client, db):
    response = client.get(HEALTHZ)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}
    assert "no-store" in response["Cache-Control"]


def test_it_is_routed_by_name(client, db):
    assert reverse("healthz") == HEALTHZ


def test_it_is_200_degraded_naming_redis_when_the_cache_is_unreachable(
    client, db, settings, closed_port
):
    """Without Redis the pages still work (sessions in the database, counters in memory), so a
    load balancer must keep this process: 200, saying what is down."""
    url = f"redis://:{PASSWORD}@127.0.0.1:{closed_port}/0"
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": url},
    }

    response = client.get(HEALTHZ)

    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "database": "ok", "redis": "unreachable"}
    assert PASSWORD not in response.content.decode()


def test_it_is_degraded_naming_redis_when_the_broker_is_unreachable(
    client, db, closed_port, monkeypatch, caplog
):
    """The web tier sends every job through the broker: a broker it cannot reach is named, and
    the warning it logs names the part, never the URL with its password."""
    monkeypatch.setattr(
        celery_app.conf, "broker_url", f"redis://:{PASSWORD}@127.0.0.1:{closed_port}/0"
    )

    response = client.get(HEALTHZ)

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["redis"] == "unreachable"
    assert "healthz: redis unreachable" in caplog.text
    assert PASSWORD not in caplog.text + response.content.decode()


def healthz_in_a_fresh_process(**env) -> tuple[dict, str]:
    """GET /healthz in a new process with these settings: the response, and all it printed."""
    script = (
        "import json, django; django.setup()\n"
        "from django.test import Client\n"
        f"response = Client().get({HEALTHZ!r})\n"
        "print(json.dumps({'status': response.status_code, 'body': response.json()}))\n"
    )
    completed = run_with_settings(script, check=True, **env)
    return json.loads(completed.stdout.splitlines()[-1]), completed.stdout + completed.stderr


@pytest.mark.parametrize("pool_size", ["10", "0"], ids=["pooled", "unpooled"])
def test_it_is_503_naming_the_database_when_postgresql_is_unreachable(closed_port, pool_size):
    """A real PostgreSQL URL whose server is not there. With the pool, the check gives up after
    its own few seconds rather than the pool's 120-s wait for a connection."""
    answer, output = healthz_in_a_fresh_process(
        DATABASE_URL=f"postgres://studio:{PASSWORD}@127.0.0.1:{closed_port}/studio",
        DATABASE_POOL_SIZE=pool_size,
        REDIS_URL=TEST_BROKER_URL,
    )

    assert answer == {
        "status": 503,
        "body": {"status": "unavailable", "database": "unreachable", "redis": "ok"},
    }
    assert "healthz: database unreachable" in output
    assert PASSWORD not in output


def test_it_is_not_redirected_to_https_when_ssl_redirect_is_on(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/").status_code == 301  # every other page goes to https
    response = client.get(HEALTHZ)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_it_answers_whatever_host_the_healthcheck_sends(client, db, settings):
    """Compose's healthcheck asks 127.0.0.1:8000 from inside the container, which production's
    DJANGO_ALLOWED_HOSTS does not list; every other path still refuses that host."""
    settings.ALLOWED_HOSTS = ["studio.example.com"]

    assert client.get(HEALTHZ, HTTP_HOST="127.0.0.1:8000").status_code == 200
    assert client.get("/", HTTP_HOST="127.0.0.1:8000").status_code == 400


def test_it_sets_no_cookie_and_reads_no_session_even_for_a_signed_in_person(alice_client):
    response = alice_client.get(HEALTHZ)

    assert response.status_code == 200
    assert not response.cookies
    assert "Set-Cookie" not in response
    assert "Cookie" not in response.get("Vary", "")


def test_it_needs_no_login_and_takes_only_get_and_head(client, db):
    assert client.get(HEALTHZ).status_code == 200
    assert client.head(HEALTHZ).status_code == 200
    assert client.post(HEALTHZ).status_code == 405
