"""Webhooks for API callers and the staff's budget-alert hook, against a real HTTP receiver on
loopback (tests/webhook_receiver.py), a real Celery worker on Redis where the queue matters, and
the signatures checked with the `standardwebhooks` package, as a receiver would."""

import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from jobs import services, webhooks
from jobs.models import AlertHook, ApiToken, Budget, Job, WebhookDelivery
from jobs.services import webhooks as delivery_services
from jobs.services.running import fail_refused
from tests.api.helpers import GENERATIONS
from tests.factories import make_entry, team_with
from tests.helpers import delivery_recorded, wait_for
from tests.webhook_receiver import WebhookReceiver

ASYNC = GENERATIONS + "?async=true"


@pytest.fixture
def loopback_allowed(settings):
    """The receiver listens on 127.0.0.1: allowed only as the studio's own setting allows it."""
    settings.GATEWAY_IMAGE_URLS_PRIVATE = True


@pytest.fixture
def quick_retries(monkeypatch):
    """The schedule's shape (a wait after each failure, then giving up), in fractions of a
    second, and a read timeout of one second, so a hanging receiver costs the test little."""
    monkeypatch.setattr(delivery_services, "RETRY_DELAYS", (0.2, 0.2, 0.2))
    monkeypatch.setattr(webhooks, "READ_TIMEOUT_SECONDS", 1)


def secret_of(key: str) -> str:
    return ApiToken.objects.get(key_hash=ApiToken.hash_key(key)).webhook_secret


def verified(received, secret: str) -> dict:
    """The body, as a receiver would accept it: signature and timestamp checked."""
    return Webhook(secret).verify(received.body, received.headers)


def submit_with_hook(api, key, url, **fields):
    response = api.post(
        key, ASYNC, json={"model": "ir/test-video", "prompt": "a fox", "webhook_url": url, **fields}
    )
    assert response.status_code == 202, response.content
    return Job.objects.get(pk=response.json()["id"])


# --- End to end, through the queue --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker", "catalog", "loopback_allowed")
def test_a_finished_job_posts_its_status_signed_so_standardwebhooks_verifies_it(api, alice_key):
    with WebhookReceiver() as receiver:
        job = submit_with_hook(api, alice_key, receiver.url, prompt="a fox in the snow")
        wait_for(receiver.count, timeout=60, what="the webhook")
        # The receiver has the message a moment before the worker records its answer.
        wait_for(lambda: delivery_recorded(job=job), what="the delivery's answer to be recorded")
        status = api.get(alice_key, f"/v1/jobs/{job.pk}")

    (received,) = receiver.received
    payload = verified(received, secret_of(alice_key))
    assert payload["status"] == "succeeded"
    assert payload == json.loads(status.content)  # what GET /v1/jobs/{id} answers
    delivery = WebhookDelivery.objects.get(job=job)
    assert received.headers["webhook-id"] == delivery.message_id
    assert received.path == "/hooks/studio"
    assert (delivery.status, delivery.event, delivery.last_status_code) == (
        "delivered",
        "job.succeeded",
        200,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker", "catalog", "loopback_allowed", "quick_retries")
def test_it_retries_after_a_500_and_a_timeout_and_stops_at_the_first_2xx(api, alice_key):
    with WebhookReceiver([500, "hang", 200], hang_seconds=3) as receiver:
        job = submit_with_hook(api, alice_key, receiver.url)
        delivery = wait_for(
            lambda: WebhookDelivery.objects.filter(job=job, status="delivered").first(),
            timeout=60,
            what="the delivery to succeed",
        )
        # Nothing more comes once it is delivered, whatever the sweeper does.
        services.sweep()
        assert receiver.count() == 3

    secret = secret_of(alice_key)
    bodies = [verified(received, secret) for received in receiver.received]
    assert bodies[0] == bodies[1] == bodies[2]
    assert len({received.headers["webhook-id"] for received in receiver.received}) == 1
    log = list(delivery.log.order_by("started_at"))
    assert [attempt.status_code for attempt in log] == [500, None, 200]
    assert "No answer within 1 seconds" in log[1].error
    assert delivery.attempts == 3


# --- Exactly once -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("catalog", "loopback_allowed")
def test_two_workers_sending_one_delivery_at_once_post_it_once(api, alice_key):
    with WebhookReceiver() as receiver:
        job = submit_with_hook(api, alice_key, receiver.url)
        services.job_cancel(job=job)
        delivery = WebhookDelivery.objects.get(job=job)
        barrier = threading.Barrier(4)

        def worker():
            barrier.wait()
            try:
                services.delivery_send(delivery_id=delivery.pk)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert receiver.count() == 1
    assert verified(receiver.received[0], secret_of(alice_key))["status"] == "canceled"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.log.count()) == ("delivered", 1, 1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("catalog", "loopback_allowed")
def test_a_job_canceled_twice_or_failed_twice_has_one_delivery(api, alice_key):
    with WebhookReceiver() as receiver:
        canceled = submit_with_hook(api, alice_key, receiver.url)
        assert services.job_cancel(job=canceled)
        assert not services.job_cancel(job=canceled)

        failed = submit_with_hook(api, alice_key, receiver.url)
        Job.objects.filter(pk=failed.pk).update(status=Job.Status.RUNNING)
        running = Job.objects.filter(pk=failed.pk, status=Job.Status.RUNNING)
        assert fail_refused(failed, running, "The provider refused it.")
        assert not fail_refused(failed, running, "The provider refused it.")

        for delivery in WebhookDelivery.objects.all():
            services.delivery_send(delivery_id=delivery.pk)
            services.delivery_send(delivery_id=delivery.pk)

    assert WebhookDelivery.objects.filter(job=canceled).count() == 1
    assert WebhookDelivery.objects.filter(job=failed).count() == 1
    secret = secret_of(alice_key)
    events = sorted(verified(received, secret)["status"] for received in receiver.received)
    assert events == ["canceled", "failed"]
    failure = next(
        verified(r, secret) for r in receiver.received if verified(r, secret)["status"] == "failed"
    )
    assert failure["error"]["code"] == "generation_failed"
    assert failure["cost"] == 0


# --- Answers that end it, and the address rule ------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("catalog", "loopback_allowed")
def test_a_404_from_the_receiver_is_final_and_says_so(api, alice_key):
    with WebhookReceiver([404]) as receiver:
        job = submit_with_hook(api, alice_key, receiver.url)
        services.job_cancel(job=job)
        delivery = WebhookDelivery.objects.get(job=job)
        services.delivery_send(delivery_id=delivery.pk)
        services.sweep()

    delivery.refresh_from_db()
    assert receiver.count() == 1
    assert delivery.status == "failed"
    assert "refused it, so it was not retried" in delivery.last_error


@pytest.mark.django_db
@pytest.mark.usefixtures("catalog")
def test_a_private_webhook_url_is_refused_at_submit_with_a_clear_message(api, alice_key):
    with WebhookReceiver() as receiver:
        response = api.post(
            alice_key,
            ASYNC,
            json={"model": "ir/test-video", "prompt": "a fox", "webhook_url": receiver.url},
        )
        multipart = api.post(
            alice_key,
            ASYNC,
            data={"model": "ir/test-video", "prompt": "a fox", "webhook_url": "ftp://x.example/"},
        )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "webhook_url"
    assert "only to public addresses, and 127.0.0.1 is not one" in error["message"]
    assert multipart.status_code == 400
    assert "must be an http:// or https:// URL" in multipart.json()["error"]["message"]
    assert not Job.objects.exists()
    assert receiver.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("catalog")
def test_a_host_that_is_private_at_delivery_time_is_not_posted_to(api, alice_key, settings):
    settings.GATEWAY_IMAGE_URLS_PRIVATE = True
    with WebhookReceiver() as receiver:
        job = submit_with_hook(api, alice_key, receiver.url)
        services.job_cancel(job=job)
        # Between submit and delivery the rule tightens (as a name may come to point inward).
        settings.GATEWAY_IMAGE_URLS_PRIVATE = False
        delivery = WebhookDelivery.objects.get(job=job)
        services.delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert receiver.count() == 0
    assert delivery.status == "failed"
    assert "only to public addresses" in delivery.last_error


@pytest.mark.django_db
@pytest.mark.usefixtures("catalog", "loopback_allowed")
def test_the_tokens_default_webhook_is_used_when_the_request_names_none(api, alice, alice_key):
    token = ApiToken.objects.get(key_hash=ApiToken.hash_key(alice_key))
    services.tokens.token_webhook_set(user=alice, token_id=token.pk, url="http://127.0.0.1:9/d")

    response = api.post(alice_key, ASYNC, json={"model": "ir/test-video", "prompt": "a fox"})
    named = api.post(
        alice_key,
        ASYNC,
        json={"model": "ir/test-video", "prompt": "a fox", "webhook_url": "http://127.0.0.1:9/n"},
    )

    assert Job.objects.get(pk=response.json()["id"]).webhook_url == "http://127.0.0.1:9/d"
    assert Job.objects.get(pk=named.json()["id"]).webhook_url == "http://127.0.0.1:9/n"


@pytest.mark.django_db
@pytest.mark.usefixtures("catalog")
def test_a_job_without_a_webhook_records_no_delivery(api, alice_key):
    response = api.post(alice_key, ASYNC, json={"model": "ir/test-video", "prompt": "a fox"})
    services.job_cancel(job=Job.objects.get(pk=response.json()["id"]))
    assert not WebhookDelivery.objects.exists()


# --- The sweeper ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker", "catalog", "loopback_allowed")
def test_the_sweeper_sends_a_delivery_whose_message_was_lost(api, alice_key):
    with WebhookReceiver() as receiver:
        response = api.post(alice_key, ASYNC, json={"model": "ir/test-video", "prompt": "a fox"})
        job = Job.objects.get(pk=response.json()["id"])
        wait_for(lambda: Job.objects.get(pk=job.pk).is_terminal, what="the job")
        # A delivery as the job's end wrote it, whose message Redis then lost.
        WebhookDelivery.objects.create(
            kind="job", event="job.succeeded", job=job, token=job.token, url=receiver.url,
            body=json.dumps({"id": str(job.pk)}), enqueued_at=timezone.now() - timedelta(minutes=5),
        )  # fmt: skip
        services.sweep()
        wait_for(receiver.count, timeout=30, what="the resent webhook")
        services.sweep()

    assert receiver.count() == 1
    assert verified(receiver.received[0], secret_of(alice_key)) == {"id": str(job.pk)}


# --- The budget-alert hook ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker", "loopback_allowed")
def test_a_budget_alert_reaches_the_staff_hook_once_in_words(alice):
    team = team_with("Design", members=[alice], limit="20")
    with WebhookReceiver() as receiver:
        AlertHook.objects.create(name="#budgets", url=receiver.url)
        make_entry(alice, "ir/test-video", "16.40", timezone.now(), team=team)
        wait_for(receiver.count, timeout=30, what="the alert")
        services.sweep()
        make_entry(alice, "ir/test-video", "0.10", timezone.now(), team=team)  # no new threshold
        services.sweep()
        wait_for(
            lambda: not WebhookDelivery.objects.exclude(status="delivered").exists(),
            what="every delivery to settle",
        )

    texts = sorted(json.loads(received.body)["text"] for received in receiver.received)
    assert len(texts) == 2  # 50% and 80%, each once
    assert texts[1].startswith("Design team has used 80% of its $20.00 monthly budget ($16.40); ")
    assert "resets in" in texts[1]
    assert "webhook-signature" not in receiver.received[0].headers


@pytest.mark.django_db
def test_the_alert_words_name_each_level(alice):
    team = team_with("Design", members=[alice])
    services.budget_set(level=Budget.Level.ORGANIZATION, limit=Decimal(10), changed_by=None)
    services.budget_set(
        level=Budget.Level.MEMBER, team=team, user=alice, limit=Decimal(5), period="week",
        changed_by=None,
    )  # fmt: skip
    with transaction.atomic():
        make_entry(alice, "ir/test-video", "5", timezone.now(), team=team)
    texts = {
        notice.level: delivery_services.budget_alert_text(notice)
        for notice in Budget.objects.get(level=Budget.Level.MEMBER).notices.filter(threshold=100)
    }
    organization = Budget.objects.get(level=Budget.Level.ORGANIZATION).notices.get(threshold=50)
    texts[1] = delivery_services.budget_alert_text(organization)
    assert texts[Budget.Level.MEMBER].startswith(
        "alice has used 100% of their $5.00 weekly budget in the Design team ($5.00); resets in "
    )
    assert texts[1].startswith("The organization has used 50% of its $10.00 monthly budget ($5.00)")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker", "loopback_allowed")
def test_a_delivery_whose_worker_stopped_mid_send_is_sent_again_by_the_sweeper(alice, token_for):
    token_for(alice, "nightly")
    token = ApiToken.objects.get(user=alice)
    with WebhookReceiver() as receiver:
        delivery = WebhookDelivery.objects.create(
            kind="job", event="job.canceled", token=token, url=receiver.url, body="{}",
            status="sending", attempts=1, claimed_at=timezone.now() - timedelta(minutes=10),
        )  # fmt: skip
        services.sweep()
        wait_for(receiver.count, timeout=30, what="the webhook")
        wait_for(
            lambda: delivery_recorded(pk=delivery.pk), what="the delivery's answer to be recorded"
        )

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert verified(receiver.received[0], token.webhook_secret) == {}


@pytest.mark.django_db
@pytest.mark.usefixtures("catalog", "loopback_allowed")
def test_a_b64_jobs_webhook_names_its_video_by_url_never_inline(api, alice_key):
    from tests.helpers import run_job_now

    job = submit_with_hook(api, alice_key, "http://127.0.0.1:9/hook", response_format="b64_json")
    run_job_now(job.pk)

    body = json.loads(WebhookDelivery.objects.get(job=job).body)
    assert body["status"] == "succeeded"
    assert body["data"] == [
        {"url": f"http://testserver/v1/jobs/{job.pk}/content", "revised_prompt": None}
    ]


@pytest.mark.django_db
@pytest.mark.usefixtures("catalog", "loopback_allowed")
def test_an_idempotency_key_repeated_with_another_webhook_is_refused(api, alice_key):
    first = {"model": "ir/test-video", "prompt": "a fox", "webhook_url": "http://127.0.0.1:9/a"}
    key = {"HTTP_IDEMPOTENCY_KEY": "nightly-1"}

    made = api.post(alice_key, ASYNC, json=first, **key)
    same = api.post(alice_key, ASYNC, json=first, **key)
    other = api.post(alice_key, ASYNC, json={**first, "webhook_url": "http://127.0.0.1:9/b"}, **key)

    assert (made.status_code, same.status_code, other.status_code) == (202, 202, 422)
    assert same.json()["id"] == made.json()["id"]
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_staff_add_alert_hooks_in_the_admin_only_on_public_addresses(admin_client):
    add = "/admin/jobs/alerthook/add/"

    refused = admin_client.post(
        add, {"name": "#budgets", "url": "http://169.254.169.254/x", "is_active": "on"}
    )
    listed = admin_client.get("/admin/jobs/webhookdelivery/")

    assert "The studio cannot post there" in refused.content.decode()
    assert not AlertHook.objects.exists()
    assert listed.status_code == 200
