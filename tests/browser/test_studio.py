"""A person signs up, generates a video and watches it, in real Chromium."""

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_up_generate_and_watch(live_server, worker, simulator, catalog, page, screenshot):
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Username").fill("dana")
    page.get_by_label(re.compile(r"^Password:?$")).fill("correct-horse-battery-9")
    page.get_by_label("Password confirmation").fill("correct-horse-battery-9")
    page.get_by_role("button", name="Sign up").click()

    page.get_by_text("Signed in as").wait_for()
    page.get_by_label("Prompt").fill("a lighthouse in a storm, waves crashing")
    page.get_by_label("Model").select_option("ir/test-video")
    page.get_by_role("button", name="Generate").click()

    page.wait_for_url("**/jobs/*/")
    url_before = page.url
    page.wait_for_function(
        "() => { const v = document.querySelector('video'); return v && v.duration > 0 }",
        timeout=60_000,
    )
    assert page.url == url_before  # htmx swapped the player in; nothing reloaded
    page.get_by_text("Cost:").wait_for()
    assert page.get_by_role("link", name="Download").is_visible()
    screenshot("finished-job")

    page.get_by_role("link", name="My videos", exact=True).click()
    assert page.get_by_text("a lighthouse in a storm").is_visible()
