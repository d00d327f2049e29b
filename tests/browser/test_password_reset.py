"""A forgotten password, reset by email in real Chromium: the log-in page's link, the message
from a real SMTP server (sent by a real worker), the link in it, a new password, and signing in
with it while the old one fails."""

import re

import pytest

from tests.browser.helpers import log_in, watch_for_csp
from tests.smtp import text_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol", "carol@example.com", "carol-old-pw-1")


def test_carol_resets_her_forgotten_password_by_email(
    live_server, worker, smtp_server, catalog, page, screenshot, carol, settings
):
    settings.STUDIO_URL = live_server.url  # the links in emails lead to this server
    violations = []
    watch_for_csp(page, violations)

    page.goto(live_server.url + "/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("carol@example.com")
    page.get_by_role("button", name="Send me a reset link").click()
    assert page.get_by_role("heading", name="Check your email").is_visible()
    assert page.get_by_text("If an account uses that address").is_visible()
    screenshot("sent")

    [message] = smtp_server.mailbox.wait_for(1)
    assert message["X-Envelope-To"] == "carol@example.com"
    link = re.search(r"http://\S+/accounts/reset/\S+", text_of(message)).group(0)
    assert link.startswith(live_server.url)

    page.goto(link)
    page.get_by_label("New password:", exact=True).fill("a-brand-new-pass-7")
    page.get_by_label("New password confirmation").fill("a-brand-new-pass-7")
    screenshot("new-password")
    page.get_by_role("button", name="Set my new password").click()
    assert page.get_by_role("heading", name="Your password is changed").is_visible()

    page.goto(link)  # the link worked once
    assert page.get_by_role("heading", name="This reset link does not work").is_visible()
    screenshot("used-link")

    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password").fill("carol-old-pw-1")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_text("Please enter a correct username and password").is_visible()

    log_in(page, live_server, "carol", "a-brand-new-pass-7")
    assert page.get_by_text("Signed in as carol").is_visible()
    assert len(smtp_server.mailbox.messages) == 1
    assert violations == []
