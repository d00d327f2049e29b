"""Sending the generate form again after an error, in real Chromium: one job.

The first answer is lost on the way back (the connection resets after the studio made the job),
so the person sees the browser's error page and reloads it, which sends the same form again, as
anyone would. The form's token makes the second send land on the first job."""

import pytest

from jobs.models import Job
from tests.browser.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def lose_the_first_answer(page):
    lost = []

    def handle(route):
        if route.request.method == "POST" and not lost:
            lost.append(
                route.fetch(max_redirects=0).status
            )  # the studio gets the submit and answers...
            route.abort("connectionreset")  # ...but the answer never reaches the browser
        else:
            route.continue_()

    page.route("**/jobs/new/", handle)
    return lost


def test_the_form_sent_again_after_a_lost_answer_lands_on_the_first_job(
    live_server, simulator, catalog, alice, page
):
    log_in(page, live_server)
    page.get_by_label("Prompt").fill("a lighthouse in a storm")
    lost = lose_the_first_answer(page)

    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(lambda url: url.startswith("chrome-error:"))  # "This site can't be reached"
    assert lost == [302]  # the studio had made the job and answered with its page
    page.reload()  # the browser sends the same form again, as its Reload button does
    page.wait_for_url("**/jobs/*-*/")

    job = Job.objects.get(owner=alice)
    assert page.url.endswith(f"/jobs/{job.pk}/")
    assert page.get_by_text("You had already pressed Generate for this video").is_visible()
