"""A share link in real Chromium: alice shares a video, a stranger's fresh browser plays it, and
stops being able to the moment she revokes it."""

import pytest

from jobs.models import Job
from tests.browser.helpers import ARTIFACTS, watch_for_csp
from tests.helpers import run_job_now

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROMPT = "a hot-air balloon rising over a foggy valley at dawn"
PLAYABLE = "() => { const v = document.querySelector('video'); return v && v.duration > 0 }"


def test_a_shared_video_plays_for_a_stranger_until_alice_stops_sharing(
    live_server, simulator, catalog, broker_url, browser, page, screenshot, alice, request
):
    job = Job.objects.create(owner=alice, prompt=PROMPT, model="ir/test-video", size="640x360")
    run_job_now(job.pk)
    violations = []
    watch_for_csp(page, violations)

    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice-password-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.get_by_role("button", name="Create a share link").click()
    link = page.get_by_label("Share link").input_value()
    assert link.startswith(live_server.url + "/s/")
    assert page.get_by_text("Anyone with this link can watch the video").is_visible()
    screenshot("owner-controls")

    def screenshot_of(stranger, name):
        ARTIFACTS.mkdir(exist_ok=True)
        stranger.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{name}.png"), full_page=True)

    stranger_context = browser.new_context(viewport={"width": 1280, "height": 900})
    phone_context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        stranger = stranger_context.new_page()
        watch_for_csp(stranger, violations)
        stranger.goto(link)
        stranger.wait_for_function(PLAYABLE, timeout=30_000)
        assert stranger.get_by_text(PROMPT).is_visible()
        assert stranger.get_by_role("link", name="Log in").is_visible()  # nobody is signed in
        assert "alice" not in stranger.content()
        screenshot_of(stranger, "desktop")

        phone = phone_context.new_page()
        watch_for_csp(phone, violations)
        phone.goto(link)
        phone.wait_for_function(PLAYABLE, timeout=30_000)
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
        screenshot_of(phone, "phone")

        page.get_by_role("button", name="Stop sharing").click()
        page.get_by_role("button", name="Create a share link").wait_for()

        response = stranger.goto(link)
        assert response.status == 404
        assert stranger.get_by_role("heading", name="Not found").is_visible()
        assert stranger.evaluate("() => document.querySelector('video')") is None
    finally:
        stranger_context.close()
        phone_context.close()

    assert violations == []
