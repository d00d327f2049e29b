"""Batches in real Chromium: a CSV with a refused row previewed, fixed and started; and the
batch page following its rows as they finish, a failed one retried. No CSP violation."""

import re

import pytest

from jobs.models import Job, JobGroup
from jobs.services.batches import batch_create_once
from tests.browser.helpers import PHONE, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_batch_from_a_csv_with_a_refused_row_is_previewed_fixed_and_started(
    live_server, simulator, catalog, alice, page, screenshot, violations, tmp_path, broker_url
):
    bad = tmp_path / "shots.csv"
    bad.write_text(
        "prompt,model,seconds\n"
        "a fox running through snow,ir/test-video,\n"
        '"a heron, landing on a pier",kling/kling-2.1-standard,7\n'
        "a lighthouse at dusk,,\n"
    )
    log_in(page, live_server)
    page.get_by_role("link", name="Make a batch").click()
    page.get_by_label("Or a CSV file").set_input_files(str(bad))
    page.get_by_role("button", name="Preview the batch").click()

    page.get_by_text("This batch cannot start").wait_for()
    refused = page.get_by_role("row").filter(has_text="a heron, landing on a pier")
    assert "kling/kling-2.1-standard makes videos of 5 or 10 seconds, not 7" in refused.inner_text()
    assert page.get_by_text("1 row would be refused").is_visible()
    assert page.get_by_text("3 prompts, up to $0.50 in all.").is_visible()
    assert page.get_by_role("button", name=re.compile("^Start")).count() == 0
    screenshot("refused-row")

    good = tmp_path / "shots-fixed.csv"
    good.write_text(bad.read_text().replace(",7\n", ",10\n"))
    page.get_by_label("Or a CSV file").set_input_files(str(good))
    page.get_by_role("button", name="Preview the batch").click()
    page.get_by_role("button", name="Start 3 videos").click()

    page.wait_for_url("**/jobs/batches/*/")
    page.get_by_role("heading", name="Your batch of 3").wait_for()
    batch = JobGroup.objects.get()
    assert list(batch.jobs.order_by("group_position").values_list("prompt", flat=True)) == [
        "a fox running through snow",
        "a heron, landing on a pier",
        "a lighthouse at dusk",
    ]
    assert violations == []


def test_the_batch_page_follows_its_rows_as_they_finish_and_retries_the_failed_one(
    live_server, worker, simulator, catalog, alice, page, screenshot, violations
):
    simulator.configure(latency={"default": 1.5})
    simulator.inject(
        {
            "kind": "http_error",
            "status": 502,
            "message": "Upstream failed",
            "match": {"prompt": "b:"},
        }
    )
    rows = [
        {"prompt": f"{n}: a boat", "model": "ir/test-video", "seconds": "auto", "size": "auto"}
        for n in "abcd"
    ]
    log_in(page, live_server)
    batch, _ = batch_create_once(
        owner=alice, team=None, rows=rows, response_format="url", key="batch:browser"
    )
    page.goto(f"{live_server.url}/jobs/batches/{batch.pk}/")
    counts = page.locator(".batch-counts")
    assert re.search(r"0 done", counts.inner_text())

    page.wait_for_function(
        "() => document.querySelector('#batch-progress[data-finished]') !== null",
        timeout=60_000,
    )
    assert re.sub(r"\s+", " ", counts.inner_text()).strip() == (
        "3 done · 0 running · 0 queued · 1 failed of 4"
    )
    assert (
        page.get_by_role("row")
        .filter(has_text="b: a boat")
        .get_by_text("Failed", exact=True)
        .is_visible()
    )
    screenshot("finished-with-a-failure")
    page.set_viewport_size(PHONE)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")

    page.get_by_role("link", name="Retry the 1 failed").click()
    page.get_by_text("The failed tries were not charged.").wait_for()
    page.get_by_role("button", name="Retry 1").click()
    page.get_by_text("Retrying: the new attempts are queued.").wait_for()
    page.wait_for_function(
        "() => document.querySelector('#batch-progress[data-finished]') !== null",
        timeout=60_000,
    )
    assert re.sub(r"\s+", " ", counts.inner_text()).strip() == (
        "4 done · 0 running · 0 queued · 0 failed of 4"
    )
    assert batch.jobs.filter(status=Job.Status.SUCCEEDED).count() == 4
    assert violations == []
