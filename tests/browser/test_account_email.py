"""Signing up with email verification, and changing one's address, in real Chromium with a real
SMTP server and worker: what a person sees at each step, and the emails that arrive."""

import re

import pytest

from tests.browser.helpers import log_in, watch_for_csp
from tests.smtp import text_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def link_in(message) -> str:
    return re.search(r"http://\S+", text_of(message)).group(0)


def test_dave_signs_up_confirms_his_address_and_only_then_logs_in(
    live_server, worker, smtp_server, catalog, page, screenshot, settings
):
    settings.STUDIO_URL = live_server.url
    settings.SIGNUP_EMAIL_VERIFICATION = True
    violations = []
    watch_for_csp(page, violations)

    page.goto(live_server.url + "/accounts/signup/")
    page.get_by_label("Username").fill("dave")
    page.get_by_label("Email address").fill("dave@example.com")
    page.get_by_label("Password:", exact=True).fill("a-long-passphrase-9")
    page.get_by_label("Password confirmation").fill("a-long-passphrase-9")
    page.get_by_role("button", name="Sign up").click()
    assert page.get_by_role("heading", name="One more step: confirm your address").is_visible()
    [first] = smtp_server.mailbox.wait_for(1)
    assert first["X-Envelope-To"] == "dave@example.com"

    page.wait_for_timeout(1100)  # a new link is a new token; tokens carry the time to the second
    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Username").fill("dave")
    page.get_by_label("Password").fill("a-long-passphrase-9")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_text("Confirm your email address first").is_visible()
    screenshot("waiting")
    page.get_by_role("button", name="send the link again").click()
    assert page.get_by_text("a new link is on its way").is_visible()
    second = smtp_server.mailbox.wait_for(2)[1]

    page.goto(link_in(second))
    page.get_by_role("button", name="Confirm my address").click()
    assert page.get_by_text("Your email address is confirmed. You can log in now.").is_visible()
    log_in(page, live_server, "dave", "a-long-passphrase-9")
    assert page.get_by_text("Signed in as dave").is_visible()
    assert violations == []


def test_carol_changes_her_address_through_a_link_to_the_new_one(
    live_server, worker, smtp_server, catalog, page, screenshot, settings, django_user_model
):
    settings.STUDIO_URL = live_server.url
    django_user_model.objects.create_user("carol", "carol@example.com", "carol-old-pw-1")
    violations = []
    watch_for_csp(page, violations)
    log_in(page, live_server, "carol", "carol-old-pw-1")

    page.get_by_role("link", name="Account").click()
    assert page.get_by_text("Your address is carol@example.com").is_visible()
    page.get_by_label("New email address").fill("carol@new.example.org")
    page.get_by_label("Your password").fill("carol-old-pw-1")
    page.get_by_role("button", name="Send the confirmation link").click()
    assert page.get_by_text("We sent a link to carol@new.example.org").is_visible()
    assert page.get_by_text("Your address is carol@example.com").is_visible()
    screenshot("sent")

    [confirm] = smtp_server.mailbox.wait_for(1)
    assert confirm["X-Envelope-To"] == "carol@new.example.org"
    page.goto(link_in(confirm))
    page.get_by_role("button", name="Use carol@new.example.org").click()
    assert page.get_by_text("Your address is now carol@new.example.org").is_visible()

    notice = smtp_server.mailbox.wait_for(2)[1]
    assert notice["X-Envelope-To"] == "carol@example.com"
    assert notice["Subject"] == "Your VideoStudio email address was changed"
    page.get_by_role("link", name="Account").click()
    assert page.get_by_text("Your address is carol@new.example.org (confirmed)").is_visible()
    assert violations == []
