"""Webhooks from the person's side, in real Chromium: alice makes a token with a webhook URL on
the API tokens page, copies its key and signing secret, a script makes a video with the key, her
receiver gets the job signed with that secret, and the page lists the delivery and sends it
again."""

import pytest
import requests
from standardwebhooks import Webhook

from tests.browser.helpers import watch_for_csp
from tests.helpers import delivery_recorded, wait_for
from tests.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_token_made_on_the_page_gets_signed_webhooks_and_sends_one_again(
    live_server, worker, catalog, page, screenshot, alice, settings
):
    settings.GATEWAY_IMAGE_URLS_PRIVATE = True  # the receiver is on loopback
    violations = []
    watch_for_csp(page, violations)
    with WebhookReceiver() as receiver:
        page.goto(live_server.url + "/accounts/login/")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("alice-password-1")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
        page.goto(live_server.url + "/api-tokens/")
        page.get_by_label("Name").fill("render script")
        page.get_by_label("Webhook URL").fill(receiver.url)
        page.get_by_role("button", name="Create token").click()
        key = page.get_by_label("Token", exact=True).input_value()
        secret = page.get_by_label("Signing secret", exact=True).input_value()
        screenshot("secret-shown-once")

        made = requests.post(
            live_server.url + "/v1/openai/videos/generations?async=true",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "ir/test-video", "prompt": "a kite over a beach"},
            timeout=10,
        )
        assert made.status_code == 202
        wait_for(receiver.count, timeout=60, what="the webhook")
        job = Webhook(secret).verify(receiver.received[0].body, receiver.received[0].headers)
        assert (job["id"], job["status"]) == (made.json()["id"], "succeeded")
        # The receiver has the message a moment before the worker records its answer.
        wait_for(delivery_recorded, what="the delivery's answer to be recorded")

        page.goto(live_server.url + "/api-tokens/")
        assert page.get_by_label("Signing secret", exact=True).count() == 0  # shown once only
        row = page.get_by_role("row").filter(has_text="job.succeeded")
        assert "Delivered" in row.inner_text() and "HTTP 200" in row.inner_text()
        row.get_by_role("button", name="Send again").click()
        assert page.get_by_text("Sending the job.succeeded webhook again.").is_visible()
        wait_for(lambda: receiver.count() == 2, timeout=30, what="the webhook sent again")
        screenshot("deliveries")

    first, again = receiver.received
    assert again.headers["webhook-id"] == first.headers["webhook-id"]
    assert Webhook(secret).verify(again.body, again.headers) == job
    assert violations == []
