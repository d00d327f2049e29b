"""My videos in real Chromium: filters and search swap the grid, a live card turns into a finished
one by itself, bulk select and delete, and the page fits a phone. All under the CSP."""

import io
import re
import zipfile

import pytest
from django.core.files.base import ContentFile
from PIL import Image
from playwright.sync_api import expect

from jobs.models import Job
from jobs.tasks import run_job
from tests.browser.helpers import PHONE, log_in
from tests.factories import new_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def poster_jpeg(color) -> ContentFile:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 180), color).save(buffer, "JPEG")
    return ContentFile(buffer.getvalue())


def finished_job(owner, prompt, *, color=(40, 90, 160), status=Job.Status.SUCCEEDED, **fields):
    job = new_job(owner, prompt, seconds="5", status=status, **fields)
    if status == Job.Status.SUCCEEDED:
        job.video.save(f"{job.pk}.mp4", ContentFile(b"\0\0\0\x18ftypmp42" + prompt.encode()))
        job.poster.save(f"{job.pk}.jpg", poster_jpeg(color))
    return job


def card_titles(page):
    return page.get_by_role("region", name="Videos").get_by_role("heading", level=2)


def mark_page(page):
    """A flag that a full page load would wipe: still there means htmx swapped in place."""
    page.evaluate("() => { window.stillTheSamePage = true }")


def assert_not_reloaded(page):
    assert page.evaluate("() => window.stillTheSamePage") is True


def test_the_grid_filters_by_status_and_by_search_text(
    live_server, page, alice, screenshot, violations
):
    finished_job(alice, "a lighthouse in a storm, waves crashing", color=(30, 60, 120))
    finished_job(alice, "a quiet alpine meadow at dawn", color=(60, 140, 70), cost="0.25")
    finished_job(alice, "a red fox crossing a snowy road", color=(170, 70, 40))
    finished_job(alice, "a lighthouse that never was", status=Job.Status.FAILED, cost="0")
    Job.objects.create(owner=alice, prompt="a paper boat on a puddle", model="ir/test-video")
    log_in(page, live_server)

    page.goto(live_server.url + "/jobs/")
    expect(card_titles(page)).to_have_count(5)
    screenshot("desktop")
    mark_page(page)

    page.get_by_label("Status").select_option(label="Failed")
    expect(card_titles(page)).to_have_text(["a lighthouse that never was"])
    page.wait_for_url("**/jobs/?*status=failed*")

    page.get_by_label("Status").select_option(label="Any status")
    page.get_by_label("Search prompts").fill("lighthouse")
    expect(card_titles(page)).to_have_text(
        ["a lighthouse that never was", "a lighthouse in a storm, waves crashing"]
    )
    page.get_by_label("Search prompts").fill("FOX")
    expect(card_titles(page)).to_have_text(["a red fox crossing a snowy road"])
    page.wait_for_url("**q=FOX*")
    assert_not_reloaded(page)

    page.get_by_role("link", name="Clear filters").click()
    expect(card_titles(page)).to_have_count(5)
    assert violations == []


def test_the_gallery_fits_a_phone_in_one_column(live_server, page, alice, screenshot, violations):
    for number, color in enumerate([(30, 60, 120), (60, 140, 70), (170, 70, 40)]):
        finished_job(alice, f"a very long prompt number {number} " + "word " * 30, color=color)
    Job.objects.create(owner=alice, prompt="still on its way", model="kling/kling-2.1-standard")
    log_in(page, live_server)
    page.set_viewport_size(PHONE)

    page.goto(live_server.url + "/jobs/")
    expect(card_titles(page)).to_have_count(4)

    boxes = [card.bounding_box() for card in page.locator("article").all()]
    assert len({round(box["x"]) for box in boxes}) == 1  # one column
    assert all(box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] for box in boxes)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot("phone")
    assert violations == []


def test_a_live_card_turns_into_a_finished_one_in_place(
    live_server, worker, simulator, catalog, page, alice, violations
):
    job = Job.objects.create(owner=alice, prompt="a heron lands on a pier", model="ir/test-video")
    log_in(page, live_server)
    page.goto(live_server.url + "/jobs/")
    card = page.locator(f"#card-{job.pk}")
    expect(card.get_by_text("Queued", exact=True).first).to_be_visible()
    select = page.get_by_label("Select “a heron lands on a pier”")
    select.check()
    mark_page(page)

    run_job.delay(str(job.pk))

    expect(card.get_by_text("Done", exact=True)).to_be_visible(timeout=60_000)
    expect(card.get_by_role("img", name="First frame of “a heron lands on a pier”")).to_be_visible()
    assert_not_reloaded(page)
    assert select.is_checked()  # the tick survives the card's swaps
    assert card.get_attribute("hx-get") is None  # the finished card no longer polls
    assert violations == []


def test_select_all_then_delete_asks_in_a_dialog_and_skips_the_live_job(
    live_server, page, alice, bob, screenshot, violations
):
    for prompt in ("first to go", "second to go", "third to go"):
        finished_job(alice, prompt)
    live = Job.objects.create(owner=alice, prompt="still running", model="ir/test-video",
                              status=Job.Status.RUNNING)  # fmt: skip
    bobs = finished_job(bob, "bob keeps this")
    log_in(page, live_server)
    page.goto(live_server.url + "/jobs/")

    page.get_by_label("Select all on this page").check()
    expect(page.get_by_text("4 selected")).to_be_visible()
    page.get_by_role("button", name="Delete selected…").click()

    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete 3 videos?")
    expect(dialog).to_contain_text("1 job is still in progress and will be skipped.")
    screenshot("confirm-dialog")
    dialog.get_by_role("button", name="Delete").click()

    expect(page.get_by_text("Deleted 3 videos and their prompts.")).to_be_visible()
    expect(page.get_by_text("Skipped 1 is still in progress")).to_be_visible()
    expect(card_titles(page)).to_have_text(["still running"])
    assert Job.objects.filter(owner=alice, deleted_at__isnull=False).count() == 3
    assert Job.objects.get(pk=live.pk).deleted_at is None
    assert Job.objects.get(pk=bobs.pk).deleted_at is None
    assert violations == []


def test_keep_them_closes_the_dialog_and_deletes_nothing(live_server, page, alice, violations):
    job = finished_job(alice, "a keeper")
    log_in(page, live_server)
    page.goto(live_server.url + "/jobs/")

    page.get_by_label("Select “a keeper”").check()
    page.get_by_role("button", name="Delete selected…").click()
    page.get_by_role("dialog").get_by_role("button", name="Keep them").click()

    expect(page.get_by_role("dialog")).to_be_hidden()
    assert Job.objects.get(pk=job.pk).deleted_at is None
    assert violations == []


def test_download_selected_gives_a_zip_of_the_ticked_videos(live_server, page, alice, violations):
    wanted = finished_job(alice, "the one I want")
    finished_job(alice, "not this one")
    log_in(page, live_server)
    page.goto(live_server.url + "/jobs/")

    page.get_by_label("Select “the one I want”").check()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download selected as .zip").click()
    download = download_info.value

    assert download.suggested_filename.startswith("videostudio-")
    archive = zipfile.ZipFile(download.path())
    [name] = archive.namelist()
    assert name.endswith(f"-the-one-i-want-{wanted.pk.hex[:8]}.mp4")
    with wanted.video.open("rb") as stored:
        assert archive.read(name) == stored.read()
    assert violations == []


def test_pages_keep_the_search_and_the_back_button_comes_back(live_server, page, alice, violations):
    for number in range(30):
        finished_job(alice, f"storm number {number:02d}")
    finished_job(alice, "calm sea")
    log_in(page, live_server)
    page.goto(live_server.url + "/jobs/")
    mark_page(page)

    page.get_by_label("Search prompts").fill("storm")
    expect(page.get_by_text("1–24 of 30 videos")).to_be_visible()
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Next").click()

    expect(page.get_by_text("25–30 of 30 videos")).to_be_visible()
    expect(card_titles(page)).to_have_count(6)
    page.wait_for_url(re.compile(r"/jobs/\?q=storm&.*page=2$"))
    assert_not_reloaded(page)

    page.go_back()
    expect(page.get_by_text("1–24 of 30 videos")).to_be_visible()
    assert "q=storm" in page.url and "page=" not in page.url
    assert violations == []
