"""The API tokens page's webhook parts: a default URL, the signing secret shown once, the recent
deliveries with their answers, and Send again (the owner's only), against a real receiver."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from jobs import services
from jobs.models import ApiToken, Job, WebhookDelivery
from tests.helpers import visible_text
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.usefixtures("catalog")

SECRET = re.compile(r'id="new-webhook-secret" type="text" readonly value="(whsec_[A-Za-z0-9+/=]+)"')
ASYNC = "/v1/openai/videos/generations?async=true"


def test_a_new_token_shows_its_signing_secret_once_with_the_key(alice_client, alice):
    response = alice_client.post(reverse("api_tokens"), {"name": "render script"})

    secret = SECRET.search(response.content.decode())[1]
    assert secret == ApiToken.objects.get(user=alice).webhook_secret
    Webhook(secret)  # a secret standardwebhooks accepts
    assert response["Cache-Control"] == "no-store"
    assert secret not in alice_client.get(reverse("api_tokens")).content.decode()


def test_a_token_made_with_a_webhook_url_keeps_it_and_a_private_one_is_refused(
    alice_client, alice, settings
):
    refused = alice_client.post(
        reverse("api_tokens"), {"name": "inside", "webhook_url": "http://10.0.0.7/hook"}
    )
    settings.GATEWAY_IMAGE_URLS_PRIVATE = True
    kept = alice_client.post(
        reverse("api_tokens"), {"name": "lan", "webhook_url": "http://10.0.0.7/hook"}
    )

    assert (
        "The studio cannot post there: the studio posts webhooks only to public addresses, and 10.0.0.7 is not one."
        in visible_text(refused)
    )
    assert kept.status_code == 200
    assert ApiToken.objects.get(user=alice).webhook_url == "http://10.0.0.7/hook"


def test_setting_and_clearing_a_tokens_default_webhook(alice_client, alice, token_for, settings):
    settings.GATEWAY_IMAGE_URLS_PRIVATE = True
    token_for(alice, "nightly")
    token = ApiToken.objects.get(user=alice)
    url = reverse("api_token_webhook", args=[token.pk])

    alice_client.post(url, {"webhook_url": "http://127.0.0.1:8999/hook"})
    token.refresh_from_db()
    assert token.webhook_url == "http://127.0.0.1:8999/hook"
    bad = alice_client.post(url, {"webhook_url": "gopher://x"}, follow=True)
    assert "must be an http:// or https:// URL" in visible_text(bad)
    alice_client.post(url, {"webhook_url": ""})
    token.refresh_from_db()
    assert token.webhook_url == ""


def test_rotating_shows_a_new_secret_once_and_signs_with_it(alice_client, alice, token_for):
    token_for(alice, "nightly")
    token = ApiToken.objects.get(user=alice)
    old = token.webhook_secret

    response = alice_client.post(reverse("api_token_secret_rotate", args=[token.pk]))

    new = SECRET.search(response.content.decode())[1]
    token.refresh_from_db()
    assert new == token.webhook_secret != old
    assert response["Cache-Control"] == "no-store"


def test_bob_gets_404_on_alices_token_and_delivery(client, alice, bob, token_for):
    token_for(alice, "nightly")
    token = ApiToken.objects.get(user=alice)
    delivery = WebhookDelivery.objects.create(
        kind="job", event="job.canceled", token=token, url="https://example.com/", body="{}",
        status="failed",
    )  # fmt: skip
    client.force_login(bob)

    assert client.post(reverse("api_delivery_resend", args=[delivery.pk])).status_code == 404
    assert client.post(reverse("api_token_secret_rotate", args=[token.pk])).status_code == 404
    assert (
        client.post(reverse("api_token_webhook", args=[token.pk]), {"webhook_url": ""}).status_code
        == 404
    )
    assert client.get(reverse("api_delivery_resend", args=[delivery.pk])).status_code == 405
    assert "example.com" not in client.get(reverse("api_tokens")).content.decode()
    delivery.refresh_from_db()
    assert delivery.status == "failed"


@pytest.mark.django_db(transaction=True)
def test_the_page_lists_deliveries_with_their_answers_and_sends_one_again(
    alice_client, alice, api, alice_key, settings
):
    settings.GATEWAY_IMAGE_URLS_PRIVATE = True
    with WebhookReceiver([503, 410]) as receiver:
        response = api.post(
            alice_key,
            ASYNC,
            json={"model": "ir/test-video", "prompt": "a fox", "webhook_url": receiver.url},
        )
        job = Job.objects.get(pk=response.json()["id"])
        services.job_cancel(job=job)
        delivery = WebhookDelivery.objects.get(job=job)
        services.delivery_send(delivery_id=delivery.pk)  # 503: to be retried
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        services.delivery_send(delivery_id=delivery.pk)  # 410: final

        page = visible_text(alice_client.get(reverse("api_tokens")))
        assert "job.canceled" in page
        assert "Given up" in page
        assert "HTTP 410 HTTP 410: the receiver refused it, so it was not retried." in page

        resent = alice_client.post(reverse("api_delivery_resend", args=[delivery.pk]), follow=True)
        assert "Sending the job.canceled webhook again." in visible_text(resent)
        twice = alice_client.post(reverse("api_delivery_resend", args=[delivery.pk]), follow=True)
        assert "still being sent" in visible_text(twice)
        services.delivery_send(delivery_id=delivery.pk)  # what the queued task does

    assert receiver.count() == 3
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == ("delivered", 200)
    assert [a.status_code for a in delivery.log.order_by("started_at")] == [503, 410, 200]
    secret = ApiToken.objects.get(user=alice).webhook_secret
    assert Webhook(secret).verify(receiver.received[2].body, receiver.received[2].headers)
