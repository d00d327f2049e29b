"""A team manager chooses what the studio emails them, in real Chromium with JavaScript off:
the page is a plain form, reached from the header."""

import pytest
from playwright.sync_api import expect

from jobs.models import AlertPreferences
from tests.browser.helpers import log_in
from tests.factories import team_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, java_script_enabled=False
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def test_a_manager_opts_into_the_digest_and_out_of_ready_emails(
    live_server, django_user_model, page, screenshot, violations
):
    alice = django_user_model.objects.create_user(
        "alice", "alice@example.com", password="alice-password-1"
    )
    team_with("Design", managers=[alice])

    log_in(page, live_server)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Notifications").click()
    page.get_by_role("heading", name="Notifications").wait_for()
    expect(page.get_by_text("What the studio emails you at alice@example.com")).to_be_visible()
    ready = page.get_by_label("Email me when a video of mine is ready")
    digest = page.get_by_label("A weekly spend digest, on Mondays")
    expect(ready).to_be_checked()
    expect(digest).not_to_be_checked()
    expect(page.get_by_text("You manage: Design team.")).to_be_visible()
    expect(page.get_by_label("The organization's budget")).to_have_count(0)  # staff only

    ready.uncheck()
    digest.check()
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_text("Your notification settings are saved.")).to_be_visible()
    expect(page.get_by_label("Email me when a video of mine is ready")).not_to_be_checked()
    expect(page.get_by_label("A weekly spend digest, on Mondays")).to_be_checked()
    screenshot("saved")
    saved = AlertPreferences.objects.get(user=alice)
    assert (saved.job_ready, saved.weekly_digest, saved.budget_teams) == (False, True, True)
    assert violations == []
