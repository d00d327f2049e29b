"""The generate form in real Chromium: it follows the chosen model without a reload, previews
the chosen image, prefills from an earlier video, fits a phone, and breaks no CSP rule."""

import pytest
from django.core.files.base import ContentFile
from playwright.sync_api import expect

from jobs import services
from jobs.models import Job, VideoModel
from tests.browser.helpers import DESKTOP, PHONE, log_in
from tests.factories import set_budget
from tests.media import image_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def options_requests(page):
    seen = []
    page.on(
        "request", lambda request: seen.append(request.url) if "/options/" in request.url else None
    )
    return seen


def seconds_offered(page):
    return page.get_by_label("Seconds").locator("option")


def image_input(page):
    return page.get_by_label("Image", exact=True)


def png_upload(size=(64, 48)):
    return {"name": "still.png", "mimeType": "image/png", "buffer": image_bytes("PNG", size)}


def test_choosing_a_model_changes_seconds_image_field_and_estimate_without_a_reload(
    live_server, simulator, catalog, alice, page, screenshot, violations, options_requests
):
    log_in(page, live_server)
    page.get_by_label("Prompt").fill("a lighthouse in a storm")
    page.get_by_role("group", name="Response format").get_by_label(
        "private (b64_ephemeral)"
    ).check()
    expect(seconds_offered(page)).to_have_text(["5 seconds"])
    expect(image_input(page)).to_be_visible()
    expect(page.get_by_text("Estimate: free")).to_be_visible()
    page.evaluate("() => { window.notReloaded = true }")

    page.get_by_label("Model").select_option("openai/sora-2")
    expect(seconds_offered(page)).to_have_text(["4 seconds", "8 seconds", "12 seconds"])
    expect(page.get_by_label("Seconds")).to_have_value("4")
    expect(image_input(page)).to_be_hidden()
    expect(image_input(page)).to_be_disabled()
    expect(page.get_by_text("price set after generation, usually $0.40–$1.20").last).to_be_visible()
    expect(page.get_by_text("No videos from this model here yet")).to_be_visible()
    screenshot("text-only-model")

    page.get_by_label("Seconds").select_option("8")
    page.get_by_label("Model").select_option("kling/kling-2.1-standard")
    expect(seconds_offered(page)).to_have_text(["5 seconds", "10 seconds"])
    expect(image_input(page)).to_be_visible()
    expect(image_input(page)).to_be_enabled()
    expect(page.get_by_text("Estimate: about $0.30, at most $0.50")).to_be_visible()
    expect(page.get_by_label("Size").locator("option")).to_have_text(
        [
            "auto: the model decides",
            "1280 × 720 (landscape)",
            "720 × 1280 (portrait)",
            "960 × 960 (square)",
        ]
    )

    # Nothing typed was lost, and the page never reloaded.
    expect(page.get_by_label("Prompt")).to_have_value("a lighthouse in a storm")
    expect(page.get_by_label("private (b64_ephemeral)")).to_be_checked()
    assert page.evaluate("() => window.notReloaded") is True
    # The prompt and the CSRF token stay out of the URLs the select asks for.
    assert len(options_requests) == 2
    assert all("prompt" not in url and "csrf" not in url for url in options_requests)
    assert violations == []


def test_the_estimate_warns_when_the_model_could_cost_more_than_is_left(
    live_server, simulator, catalog, alice, page, violations
):
    set_budget(alice, "0.55")
    log_in(page, live_server)
    expect(page.get_by_text("You have $0.55 left this month, resets in ")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)

    page.get_by_label("Model").select_option("google/veo-3.1-fast")
    warning = page.get_by_role("alert")
    expect(warning).to_contain_text("This model can cost up to $0.60, more than you have left")
    expect(warning).to_contain_text("Generate would be refused")

    page.get_by_label("Model").select_option("kling/kling-2.1-standard")
    expect(page.get_by_role("alert")).to_have_count(0)
    assert violations == []


def test_a_model_withdrawn_while_the_page_is_open_says_so_at_the_estimate(
    live_server, simulator, catalog, alice, page, violations
):
    log_in(page, live_server)
    VideoModel.objects.filter(pk="google/veo-3.1-fast").update(
        visibility=VideoModel.Visibility.HIDDEN
    )
    page.get_by_label("Model").select_option("google/veo-3.1-fast")
    expect(page.get_by_role("alert")).to_have_text(
        "You cannot choose this model. Reload the page to see the models you can."
    )
    expect(seconds_offered(page)).to_have_text(["5 seconds"])  # left as they were
    assert violations == []


def test_a_chosen_image_is_previewed_kept_across_models_and_sent(
    live_server, simulator, catalog, alice, broker_url, page, screenshot, violations
):
    log_in(page, live_server)
    page.get_by_label("Model").select_option("kling/kling-2.1-standard")
    expect(seconds_offered(page)).to_have_text(["5 seconds", "10 seconds"])
    image_input(page).set_input_files(png_upload())

    preview = page.get_by_role("img", name="Preview of your image")
    expect(preview).to_be_visible()
    page.wait_for_function(
        "() => document.querySelector('img[alt=\"Preview of your image\"]').naturalWidth === 64"
    )
    screenshot("preview")

    # Away to a model without image input and back: the file (and its preview) stays.
    page.get_by_label("Model").select_option("openai/sora-2")
    expect(image_input(page)).to_be_hidden()
    page.get_by_label("Model").select_option("kling/kling-2.1-standard")
    expect(image_input(page)).to_be_enabled()
    expect(preview).to_be_visible()

    page.get_by_role("button", name="Remove image").click()
    expect(preview).to_have_count(0)
    expect(page.get_by_role("button", name="Remove image")).to_be_hidden()

    image_input(page).set_input_files(png_upload((40, 40)))
    expect(preview).to_be_visible()
    image_input(page).set_input_files([])  # the person empties the picker
    expect(preview).to_have_count(0)

    image_input(page).set_input_files(png_upload((40, 40)))
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url("**/jobs/*/")
    job = Job.objects.get(owner=alice)
    assert job.model == "kling/kling-2.1-standard"
    assert job.input_image.name.endswith(".png")
    assert violations == []


def test_generate_again_prefills_the_form_and_reuses_the_earlier_image(
    live_server, simulator, catalog, alice, broker_url, page, screenshot, violations
):
    earlier = Job.objects.create(
        owner=alice,
        prompt="a paper boat on a stream",
        model="kling/kling-2.1-standard",
        size="720x1280",
        seconds="10",
        status=Job.Status.SUCCEEDED,
    )
    earlier.input_image.save("input.png", ContentFile(image_bytes("PNG", (48, 32))))
    log_in(page, live_server)

    page.goto(f"{live_server.url}/jobs/new/?from={earlier.pk}&edit=1")
    expect(page.get_by_label("Prompt")).to_have_value("a paper boat on a stream")
    expect(page.get_by_label("Prompt")).to_be_focused()
    expect(page.get_by_label("Seconds")).to_have_value("10")
    expect(page.get_by_label("Size")).to_have_value("720x1280")
    expect(page.get_by_text("Using the input image from your earlier video")).to_be_visible()
    expect(page.get_by_label("Use that image again")).to_be_checked()
    thumb = page.get_by_role("img", name="The input image from your earlier video")
    expect(thumb).to_be_visible()
    assert thumb.evaluate("image => image.naturalWidth") == 48

    # The box keeps the person's choice while the model changes, even through one that hides it.
    page.get_by_label("Use that image again").uncheck()
    page.get_by_label("Model").select_option("openai/sora-2")
    expect(page.get_by_label("Use that image again")).to_be_hidden()
    page.get_by_label("Model").select_option("kling/kling-2.1-standard")
    expect(page.get_by_label("Use that image again")).to_be_visible()
    expect(page.get_by_label("Use that image again")).not_to_be_checked()
    page.get_by_label("Use that image again").check()
    # Not earlier: a Playwright screenshot leaves style="" on the page's inputs (it hides the
    # text caret), which htmx's settle step would copy on the next swap, and the policy block.
    screenshot("prefilled")

    page.get_by_label("Prompt").fill("a paper boat on a stream, at dusk")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url("**/jobs/*/")
    new = Job.objects.exclude(pk=earlier.pk).get(owner=alice)
    assert new.prompt == "a paper boat on a stream, at dusk"
    assert new.input_image.read() == earlier.input_image.open("rb").read()
    assert violations == []


def test_use_as_input_image_shows_the_last_frame(
    live_server, simulator, catalog, alice, page, violations
):
    video = Job.objects.create(
        owner=alice, prompt="a clock ticking", model="openai/sora-2", size="1280x720",
        seconds="4", response_format="b64_json",
    )  # fmt: skip
    services.job_run(job_id=video.pk)  # b64_json: stored inline, nothing is enqueued
    log_in(page, live_server)

    page.goto(f"{live_server.url}/jobs/new/?frame={video.pk}")
    expect(page.get_by_label("Model")).to_have_value("ir/test-video")  # sora-2 takes no image
    expect(page.get_by_text("Using the last frame of your earlier video")).to_be_visible()
    expect(page.get_by_label("Use this frame")).to_be_checked()
    frame = page.get_by_role("img", name="The last frame of your earlier video")
    expect(frame).to_be_visible()
    page.wait_for_function(
        "() => document.querySelector('img.earlier-image__thumb').naturalWidth === 1280"
    )

    # A file of one's own replaces the frame; ticking the frame again lets go of the file.
    image_input(page).set_input_files(png_upload())
    expect(page.get_by_label("Use this frame")).not_to_be_checked()
    page.get_by_label("Use this frame").check()
    expect(page.get_by_role("img", name="Preview of your image")).to_have_count(0)
    assert image_input(page).evaluate("input => input.files.length") == 0
    assert violations == []


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_form_fits_the_screen(
    live_server, simulator, catalog, alice, page, screenshot, violations, viewport
):
    page.set_viewport_size(viewport)
    log_in(page, live_server)
    page.get_by_label("Model").select_option("kling/kling-2.1-standard")
    expect(image_input(page)).to_be_visible()
    image_input(page).set_input_files(png_upload((1200, 800)))
    expect(page.get_by_role("img", name="Preview of your image")).to_be_visible()

    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    screenshot("form")
    assert violations == []
