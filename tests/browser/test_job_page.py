"""The job page in real Chromium: where a job stands while it waits and runs, the finished
player, the opt-in notification, and a phone-sized screen. No CSP violation anywhere."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from tests.browser.helpers import DESKTOP, PHONE
from tests.factories import new_job, queued, submit, succeeded_in
from tests.helpers import run_job_now, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The status poll's URL, which carries the fragment's version (?v=) and the typical wait.
STATUS_POLL = re.compile(r"/jobs/[^/]+/status/(\?.*)?$")

# Chromium headless has the Notification API, and its permission is real (granted below), but
# it shows no OS notification and offers no way to see one. So the constructor alone is replaced
# by one that records its calls; permission and requestPermission stay the browser's own.
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  window.shownNotifications = [];
  function Recorded(title, options) {
    window.shownNotifications.push({title: title, body: (options || {}).body || ""});
    this.close = () => {};
  }
  Object.defineProperty(Recorded, "permission", {get: () => Real.permission});
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
})();
"""


def open_job_as_alice(page, live_server, job):
    """Opens the job's page signed out, logs in on the page that asks, and lands back on it."""
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice-password-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**/jobs/{job.pk}/")
    page.locator("#job-status").wait_for()


def fits_a_phone(page) -> bool:
    """Nothing on the page is wider than the screen: no sideways scrolling."""
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= window.innerWidth"
        " && document.body.scrollWidth <= window.innerWidth"
    )


def screenshots_at_both_widths(page, screenshot, state: str):
    """Saves the page at desktop and phone widths, checking the phone one fits, and goes back."""
    screenshot(f"{state}-desktop")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(100)  # one layout
    assert fits_a_phone(page), f"the {state} job page scrolls sideways on a phone"
    screenshot(f"{state}-phone")
    page.set_viewport_size(DESKTOP)


def hold_status_polls(page, *, answer_204: bool = False):
    """Route the status polls. With answer_204 every poll gets "no content" (htmx swaps nothing),
    so only job.js can change the page. Otherwise polls pass until `held.hold = True`; then each
    is kept in `held.routes` until the test lets it go, so the test decides when the page learns
    of a change."""

    class Held:
        hold = False
        routes = []

    def handle(route):
        if answer_204:
            route.fulfill(status=204)
        elif Held.hold:
            Held.routes.append(route)
        else:
            route.continue_()

    page.route(STATUS_POLL, handle)
    return Held


def past_successes(owner, seconds: int, count: int = 3):
    """Earlier jobs on the test model that each took `seconds` from start to stored: the usual
    wait."""
    for _ in range(count):
        succeeded_in(owner, seconds, minutes_ago=10)


def test_a_queued_job_shows_its_place_in_both_queues(
    live_server, simulator, catalog, page, screenshot, violations, alice, bob
):
    queued(bob, "bob's first", ago=30)
    queued(alice, "my first", ago=20)
    job = new_job(alice, "a paper boat drifting down a rainy street gutter")

    open_job_as_alice(page, live_server, job)

    page.get_by_text("2nd in your queue · 3rd in the studio's").wait_for()
    assert page.get_by_role("button", name="Cancel").is_visible()
    assert page.get_by_role("button", name="Notify me when it's ready").is_visible()
    screenshots_at_both_widths(page, screenshot, "queued")

    # The job ahead of mine in the studio's queue starts: the place's own poll (every 10 s)
    # moves me up, while the status polls answer 204.
    Job.objects.filter(owner=bob).update(status=Job.Status.RUNNING, started_at=timezone.now())
    page.get_by_text("2nd in your queue · 2nd in the studio's").wait_for(timeout=12_000)
    assert violations == []


def test_polls_answer_204_until_the_job_changes_and_the_new_fragment_keeps_the_bar(
    live_server, simulator, catalog, page, violations, alice
):
    past_successes(alice, seconds=30)
    job = new_job(alice, "a fox in fresh snow")
    answers = []
    page.on(
        "response",
        lambda response: (
            answers.append((response.status, response.url))
            if STATUS_POLL.search(response.url)
            else None
        ),
    )

    open_job_as_alice(page, live_server, job)
    page.wait_for_timeout(4_500)

    # Nothing changed: each poll is a 204, and htmx keeps the fragment it has.
    assert len(answers) >= 2 and {status for status, _ in answers} == {204}
    assert all("v=queued.0" in url and "wait=30" in url for _, url in answers)
    assert page.get_by_text("1st in your queue · 1st in the studio's").is_visible()

    # A worker claims it: the next poll brings the running fragment, with the bar toward the
    # typical wait that the page read once and the poll's URL carried.
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, attempt=1, started_at=timezone.now()
    )
    page.get_by_text("Usually ready in about 30 s; this is an estimate, not a promise.").wait_for(
        timeout=5_000
    )
    assert page.locator("progress").is_visible()
    assert "v=running.1" in page.locator("#job-status").get_attribute("hx-get")
    timer = page.get_by_role("timer")
    first = timer.inner_text()
    answers.clear()
    page.wait_for_timeout(2_500)
    assert timer.inner_text() != first  # job.js ticks between polls
    assert answers and {status for status, _ in answers} == {204}
    assert violations == []


def test_the_elapsed_timer_ticks_and_the_bar_turns_indeterminate_past_the_usual_wait(
    live_server, simulator, catalog, page, screenshot, violations, alice
):
    past_successes(alice, seconds=10)
    job = new_job(
        alice,
        "a hummingbird hovering over a red flower, slow motion",
        status=Job.Status.RUNNING,
        attempt=1,
        started_at=timezone.now() - timedelta(seconds=1),
    )
    hold_status_polls(page, answer_204=True)  # nothing but job.js can change the page now

    open_job_as_alice(page, live_server, job)

    timer = page.get_by_role("timer")
    bar = page.locator("progress")
    first_text, first_value = timer.inner_text(), bar.evaluate("bar => bar.value")
    usual = page.get_by_text(
        "Usually ready in about 10 s; this is an estimate, not a promise.", exact=True
    )
    assert usual.is_visible()
    screenshots_at_both_widths(page, screenshot, "running")
    page.wait_for_timeout(2_100)
    assert timer.inner_text() != first_text
    assert bar.evaluate("bar => bar.value") > first_value

    # Past the usual 10 s: the bar no longer claims to know how much is left.
    page.get_by_text("Taking longer than usual").wait_for(timeout=12_000)
    assert bar.evaluate("bar => bar.hasAttribute('value')") is False
    assert usual.is_hidden()
    assert violations == []


def test_a_finished_job_plays_in_the_page_and_fits_a_phone(
    live_server, worker, simulator, catalog, page, screenshot, violations, alice
):
    job = submit(
        alice,
        "a lighthouse in a storm, waves crashing",
        response_format=Job.ResponseFormat.B64_EPHEMERAL,
    )

    open_job_as_alice(page, live_server, job)

    # First the worker, then the page: a failure says which of the two let it down.
    wait_for(
        lambda: Job.objects.filter(pk=job.pk, status__in=Job.TERMINAL).exists(),
        timeout=60,
        what="the worker to finish the job",
    )
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    page.wait_for_function(
        "() => { const v = document.querySelector('video'); return v && v.duration > 0 }",
        timeout=20_000,
    )
    page.get_by_text("Cost:").wait_for()
    # The poster is made after the video is stored, on a worker of its own, so the page that
    # showed the video may have come before it: once it is there, the page shows it.
    wait_for(
        lambda: Job.objects.filter(pk=job.pk).exclude(poster="").exists(),
        timeout=30,
        what="the poster worker to make the poster",
    )
    page.reload()
    page.wait_for_function(
        "() => { const v = document.querySelector('video'); return v && v.duration > 0 }",
        timeout=20_000,
    )
    video = page.locator("video")
    assert video.get_attribute("poster") == f"/jobs/{job.pk}/poster/"
    create = "/jobs/new/"
    assert page.get_by_role("link", name="Download").is_visible()
    assert page.get_by_role("link", name="Generate again").get_attribute("href") == (
        f"{create}?from={job.pk}"
    )
    assert page.get_by_role("link", name="Edit & re-run").get_attribute("href") == (
        f"{create}?from={job.pk}&edit=1"
    )
    assert page.get_by_role("link", name="Use as input image").get_attribute("href") == (
        f"{create}?frame={job.pk}"
    )
    screenshots_at_both_widths(page, screenshot, "done")

    page.set_viewport_size(PHONE)
    page.reload()
    page.wait_for_function("() => document.querySelector('video').duration > 0")
    assert fits_a_phone(page)
    assert video.evaluate("v => v.getBoundingClientRect().width <= window.innerWidth")
    assert violations == []


def test_an_opted_in_hidden_tab_gets_a_notification_when_the_job_is_done(
    live_server, simulator, catalog, page, violations, alice
):
    page.context.grant_permissions(["notifications"], origin=live_server.url)
    page.add_init_script(RECORD_NOTIFICATIONS)
    # Stored inline (b64), so finishing it here sends no message to any queue.
    job = new_job(
        alice,
        "a red kite over green hills",
        response_format=Job.ResponseFormat.B64_EPHEMERAL,
    )
    polls = hold_status_polls(page)
    open_job_as_alice(page, live_server, job)

    page.get_by_role("button", name="Notify me when it's ready").click()
    opted_in = page.get_by_text("You'll get a browser notification when it's done")
    opted_in.wait_for()
    page.wait_for_timeout(2_500)  # a poll replaces the fragment; the opt-in survives it
    assert opted_in.is_visible()
    assert not page.get_by_role("button", name="Notify me when it's ready").is_visible()

    # Catch the next poll before it reaches the server, switch tabs, finish the job, then let
    # the poll through: the page learns the news while hidden, as it would in a background tab.
    polls.hold = True
    wait_for(lambda: page.wait_for_timeout(100) or polls.routes, timeout=5, what="the next poll")
    page.evaluate(
        "() => Object.defineProperty(document, 'visibilityState',"
        " {get: () => 'hidden', configurable: true})"
    )
    run_job_now(job.pk)
    polls.hold = False
    for route in polls.routes:
        route.continue_()

    page.wait_for_function("() => window.shownNotifications.length > 0", timeout=10_000)
    shown = page.evaluate("() => window.shownNotifications")
    assert shown == [{"title": "Your video is ready", "body": "a red kite over green hills"}]
    assert page.locator("video").count() == 1
    # One notification per job: the opt-in is spent.
    assert page.evaluate(f"() => sessionStorage.getItem('notify:{job.pk}')") is None
    assert violations == []


def test_a_browser_without_notifications_is_not_offered_them(
    live_server, simulator, catalog, page, violations, alice
):
    page.add_init_script("delete window.Notification")
    job = new_job(alice, "a quiet pond at dawn")

    open_job_as_alice(page, live_server, job)

    page.get_by_text("in your queue").wait_for()
    assert page.get_by_role("button", name="Notify me when it's ready").count() == 0
    assert violations == []
