"""A person signs up, generates a video and watches it, in real Chromium."""

import re

import pytest

from tests.browser.helpers import log_in

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
    assert page.get_by_role(
        "link", name="a lighthouse in a storm, waves crashing", exact=True
    ).is_visible()


def test_a_hidden_tab_stops_asking_every_two_seconds(live_server, simulator, catalog, page, alice):
    from jobs.models import Job

    job = Job.objects.create(owner=alice, prompt="waiting in the queue", model="ir/test-video")
    log_in(page, live_server)
    polls = []
    page.on(
        "request", lambda request: polls.append(request.url) if "/status" in request.url else None
    )
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.wait_for_timeout(4500)
    assert len(polls) >= 2  # visible: every 2 s

    page.evaluate(
        "() => Object.defineProperty(document, 'visibilityState', {get: () => 'hidden', configurable: true})"
    )
    polls.clear()
    page.wait_for_timeout(5000)
    assert polls == []  # hidden: at most one every 30 s, and one was just made

    page.evaluate(
        "() => Object.defineProperty(document, 'visibilityState', {get: () => 'visible', configurable: true})"
    )
    page.wait_for_timeout(2500)
    assert len(polls) >= 1
