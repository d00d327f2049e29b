"""Redis down is not the studio down: on the real stack, with a redis-server of the test's own
that the test stops and starts again (the broker and the cache both point at it).

- A submit while Redis is away is accepted (the job is in the database, queued) and never
  answered 500 after its job exists; once Redis is back the sweeper sends it, and it runs once.
- Pages, log-in and log-out work: sessions are in the database, the counters behind the rate
  limits fall back to each process's memory (the limits still hold), /healthz says what is down.
"""

import pytest
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings as django_settings
from django.urls import reverse

from jobs import services
from jobs.models import Job
from jobs.services import tokens
from tests.factories import form_data
from tests.helpers import running_worker, wait_for
from tests.redis_server import RedisServer, broker
from videostudio.celery import app as celery_app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("catalog")]

FORM = form_data(prompt="sunrise over mountains")


@pytest.fixture
def studio_redis(tmp_path, settings):
    """The studio's broker and cache on a Redis of this test's own, as a deployment has them
    (one REDIS_URL, the studio's own cache backend), started."""
    server = RedisServer(tmp_path)
    server.start()
    settings.CACHES = {
        "default": {
            **django_settings.CACHES["default"],
            "BACKEND": "videostudio.cache.FallbackRedisCache",
            "LOCATION": server.url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    AxesProxyHandler.get_implementation(force=True)  # it keeps the cache it started with
    with broker(celery_app, server.url):
        yield server
    server.stop()


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client


def test_a_form_submit_while_redis_is_down_is_accepted_then_runs_once_when_it_is_back(
    studio_redis, signed_in, alice, simulator
):
    studio_redis.stop()

    response = signed_in.post(reverse("jobs:create"), FORM)

    job = Job.objects.get(owner=alice)
    assert response.status_code == 302
    assert response.url == reverse("jobs:detail", args=[job.pk])
    assert job.status == Job.Status.QUEUED
    assert job.enqueued_at is None  # no message went: the sweeper's next pass sends it
    assert "Queued" in signed_in.get(response.url).content.decode()

    studio_redis.start()
    assert services.sweep()["requeued"] == 1
    assert studio_redis.queued("generate") == 1
    with running_worker(studio_redis.url, queues=("generate", "store")):
        wait_for(lambda: Job.objects.get(pk=job.pk).is_terminal, what="the job to finish")

    assert Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED
    assert simulator.stats()["generation_requests"] == 1


def test_an_api_submit_while_redis_is_down_is_accepted_not_a_500(
    studio_redis, client, alice, settings
):
    """With the per-person and per-token rate limits on, whose counters live in Redis."""
    settings.JOB_SUBMITS_PER_MINUTE = 10
    settings.GATEWAY_REQUESTS_PER_MINUTE = 120
    _, key = tokens.token_create(user=alice, name="script")
    studio_redis.stop()

    def submit():
        return client.post(
            "/v1/openai/videos/generations?async=true",
            {"model": "ir/test-video", "prompt": "fox"},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
            HTTP_IDEMPOTENCY_KEY="while-redis-is-down",
        )

    response, repeat = submit(), submit()

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    assert repeat.json()["id"] == response.json()["id"]  # a client's retry pays nothing more
    assert Job.objects.filter(owner=alice).count() == 1


def test_the_submit_rate_limit_still_holds_while_redis_is_down(
    studio_redis, signed_in, alice, settings
):
    """The counters fall back to this process's memory: the limit still holds, per process."""
    settings.JOB_SUBMITS_PER_MINUTE = 2
    studio_redis.stop()

    answers = [signed_in.post(reverse("jobs:create"), FORM) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [302, 302, 200]
    assert "the most this studio allows" in answers[2].content.decode()
    assert Job.objects.filter(owner=alice).count() == 2


def test_signing_in_and_every_signed_in_page_work_while_redis_is_down(studio_redis, client, alice):
    job = Job.objects.create(owner=alice, prompt="a fox", model="ir/test-video")
    studio_redis.stop()

    signed_in = client.post(
        reverse("login"), {"username": "alice", "password": "alice-password-1"}, follow=True
    )
    assert "Signed in as <strong>alice</strong>" in signed_in.content.decode()
    for url in (
        reverse("jobs:list"),
        reverse("jobs:create"),
        reverse("jobs:detail", args=[job.pk]),
        reverse("jobs:status", args=[job.pk]),
        reverse("spending"),
        reverse("api_tokens"),
    ):
        assert client.get(url).status_code == 200, url
    client.post(reverse("logout"))
    assert client.get(reverse("jobs:list")).status_code == 302


def test_wrong_passwords_are_still_throttled_while_redis_is_down(
    studio_redis, client, alice, settings
):
    settings.AXES_FAILURE_LIMIT = 2
    studio_redis.stop()

    for _ in range(2):
        client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    locked = client.post(reverse("login"), {"username": "alice", "password": "alice-password-1"})

    assert "Signed in as" not in locked.content.decode()
    assert locked.status_code == 429


def test_a_session_ended_while_redis_was_away_does_not_come_back_with_it(
    studio_redis, client, alice
):
    """Sessions live in the database alone, so no cached copy outlives a log-out."""
    client.post(reverse("login"), {"username": "alice", "password": "alice-password-1"})
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert client.get(reverse("jobs:list")).status_code == 200
    studio_redis.stop()
    client.post(reverse("logout"))
    studio_redis.start()

    client.cookies[django_settings.SESSION_COOKIE_NAME] = cookie  # the old cookie, replayed
    assert client.get(reverse("jobs:list")).status_code == 302


def test_healthz_says_redis_is_down_and_the_studio_is_degraded(studio_redis, client):
    studio_redis.stop()

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "database": "ok", "redis": "unreachable"}
