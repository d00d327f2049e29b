"""Idempotency-Key on POST /v1/openai/videos/generations: a repeat gets the first request's job,
never a second paid one; the same key with another body is a 422."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.test import Client

from jobs import services
from jobs.models import CostEntry, Job, SubmitKey
from tests.api.helpers import GENERATIONS
from tests.helpers import wait_for
from tests.media import image_bytes

pytestmark = pytest.mark.usefixtures("catalog", "broker_url")

ASYNC = GENERATIONS + "?async=true"
FOX = {"model": "ir/test-video", "prompt": "a red fox running through snow"}


def keyed(key):
    return {"HTTP_IDEMPOTENCY_KEY": key}


def test_a_repeated_key_gets_the_first_job_back_and_makes_no_second(api, alice, alice_key):
    first = api.post(alice_key, ASYNC, json=FOX, **keyed("render-42"))
    again = api.post(alice_key, ASYNC, json=FOX, **keyed("render-42"))

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Job.objects.filter(owner=alice).count() == 1


def test_the_repeat_shows_the_jobs_current_state(api, alice, alice_key):
    first = api.post(alice_key, ASYNC, json=FOX, **keyed("k1")).json()
    Job.objects.filter(pk=first["id"]).update(status=Job.Status.RUNNING)

    again = api.post(alice_key, ASYNC, json=FOX, **keyed("k1"))

    assert again.json()["status"] == "running"


def test_the_same_key_with_another_body_is_a_422_and_makes_nothing(api, alice, alice_key):
    api.post(alice_key, ASYNC, json=FOX, **keyed("k2"))

    response = api.post(alice_key, ASYNC, json={**FOX, "prompt": "a grey wolf"}, **keyed("k2"))

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert error["param"] == "Idempotency-Key"
    assert "different request" in error["message"]
    assert Job.objects.filter(owner=alice).count() == 1


def test_the_same_request_as_json_or_multipart_is_one_request(api, alice, alice_key):
    """What counts is the request, not its encoding: defaults spelled out, another key order,
    multipart instead of JSON."""
    first = api.post(alice_key, ASYNC, json=FOX, **keyed("k3"))
    spelled_out = {"size": "auto", "seconds": "auto", "response_format": "url", **FOX}
    as_multipart = api.post(alice_key, ASYNC, data=spelled_out, **keyed("k3"))

    assert as_multipart.status_code == 202
    assert as_multipart.json()["id"] == first.json()["id"]


def test_an_uploaded_image_is_part_of_the_request(api, alice, alice_key):
    def upload(side):
        image = image_bytes("PNG", size=(side, side))
        return SimpleUploadedFile("in.png", image, content_type="image/png")

    fields = {"model": "ir/test-video", "prompt": "it moves"}
    first = api.post(alice_key, ASYNC, data={**fields, "image[]": upload(32)}, **keyed("k4"))
    same = api.post(alice_key, ASYNC, data={**fields, "image[]": upload(32)}, **keyed("k4"))
    other = api.post(alice_key, ASYNC, data={**fields, "image[]": upload(40)}, **keyed("k4"))

    assert first.status_code == same.status_code == 202
    assert same.json()["id"] == first.json()["id"]
    assert other.status_code == 422


def test_keys_are_each_persons_own(api, alice, bob, alice_key, bob_key):
    alices = api.post(alice_key, ASYNC, json=FOX, **keyed("shared-name")).json()
    bobs = api.post(bob_key, ASYNC, json=FOX, **keyed("shared-name")).json()

    assert alices["id"] != bobs["id"]
    assert Job.objects.get(pk=bobs["id"]).owner == bob


def test_a_key_is_forgotten_after_24_hours(api, alice, alice_key):
    first = api.post(alice_key, ASYNC, json=FOX, **keyed("k5")).json()
    SubmitKey.objects.update(created_at=SubmitKey.objects.get().created_at - timedelta(hours=25))

    again = api.post(alice_key, ASYNC, json={**FOX, "prompt": "another"}, **keyed("k5"))

    assert again.status_code == 202
    assert again.json()["id"] != first["id"]
    assert SubmitKey.objects.count() == 1  # the expired entry made way for the new one


def test_the_sweeper_deletes_expired_keys_but_not_their_jobs(api, alice, alice_key):
    api.post(alice_key, ASYNC, json=FOX, **keyed("k6"))
    SubmitKey.objects.update(created_at=SubmitKey.objects.get().created_at - timedelta(hours=25))

    assert services.sweep()["submit_keys_expired"] == 1
    assert Job.objects.filter(owner=alice).count() == 1


def test_a_refused_submit_is_not_remembered(api, alice, alice_key):
    """Over budget made nothing, so the same key is judged afresh once the budget allows it."""
    services.budget_set(user=alice, limit=Decimal("0.10"), changed_by=None)
    priced = {"model": "kling/kling-2.1-standard", "prompt": "fox", "seconds": "5"}

    refused = api.post(alice_key, ASYNC, json=priced, **keyed("k7"))
    services.budget_set(user=alice, limit=Decimal("10"), changed_by=None)
    accepted = api.post(alice_key, ASYNC, json=priced, **keyed("k7"))

    assert refused.status_code == 402
    assert accepted.status_code == 202
    assert Job.objects.filter(owner=alice).count() == 1


@pytest.mark.parametrize("bad", ["", "x" * 256, "with space", "naïve"])
def test_a_malformed_key_is_a_400_naming_the_header(api, alice, alice_key, bad):
    extra = {"HTTP_IDEMPOTENCY_KEY": bad.encode().decode("latin-1")}

    response = api.post(alice_key, ASYNC, json=FOX, **extra)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Idempotency-Key"
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_ten_racing_requests_with_one_key_make_one_job(alice, alice_key, settings):
    """Ten threads, ten database connections, one key: one job, one hold, nine replays."""
    settings.JOB_SUBMITS_PER_MINUTE = 0
    services.budget_set(user=alice, limit=Decimal("0.50"), changed_by=None)
    priced = {"model": "kling/kling-2.1-standard", "prompt": "fox", "seconds": "5"}
    start = threading.Barrier(10)
    answers = []

    def send():
        client = Client()
        start.wait()
        try:
            answers.append(
                client.post(
                    ASYNC,
                    priced,
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {alice_key}",
                    HTTP_IDEMPOTENCY_KEY="race",
                )
            )
        finally:
            connections.close_all()  # back to the pool, for the threads still waiting for one

    threads = [threading.Thread(target=send) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [answer.status_code for answer in answers] == [202] * 10
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert Job.objects.filter(owner=alice).count() == 1
    replayed = [answer for answer in answers if answer.get("Idempotent-Replayed") == "true"]
    assert len(replayed) == 9


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
def test_a_waiting_request_repeated_after_its_answer_gets_the_same_video_paid_once(
    live_server, alice, alice_key, simulator
):
    """A script whose connection broke off sends the same request again: it gets the first
    job's answer, and the provider was paid once."""
    http = requests.Session()
    http.trust_env = False
    headers = {"Authorization": f"Bearer {alice_key}", "Idempotency-Key": "nightly-render"}
    priced = {"model": "kling/kling-2.1-standard", "prompt": "fox", "seconds": "5"}
    url = live_server.url + GENERATIONS

    first = http.post(url, json=priced, headers=headers, timeout=60).json()
    again = http.post(url, json=priced, headers=headers, timeout=60)

    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first["id"]
    assert again.json()["cost"] == first["cost"] > 0
    wait_for(lambda: CostEntry.objects.filter(job_id=first["id"]).exists(), what="the ledger")
    assert CostEntry.objects.count() == 1
    assert simulator.stats()["paid_calls"] == 1
