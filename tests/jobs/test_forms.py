"""The generate form: every bad input gets a message at its field, and a refused submit saves
and charges nothing. The upload's own checks are in test_uploads.py."""

import html
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from jobs import selectors
from jobs.forms import JobForm
from jobs.models import Budget, CostEntry, Job, VideoModel
from jobs.selectors import catalog_models
from tests.factories import form_data, set_budget
from tests.media import MEGABYTE, blank_png, image_bytes

pytestmark = pytest.mark.usefixtures("catalog", "upload_limits")

FIELDS = form_data(prompt="a lighthouse in a storm", seconds="auto")  # a valid request


def sizeless_model(**fields) -> VideoModel:
    """A model that lists no sizes, so it takes any W x H within the studio's bounds."""
    return VideoModel(
        id="test/any-size",
        name="Any size",
        pricing=VideoModel.Pricing.FIXED,
        price_min=Decimal("0.10"),
        price_average=Decimal("0.10"),
        price_max=Decimal("0.10"),
        seconds=[5],
        default_seconds=5,
        sizes=[],
        accepts_image=False,
        synced_at=timezone.now(),
        **fields,
    )


def make_form(files=None, models=None, **data):
    fields = {**FIELDS, **data}
    return JobForm(fields, files or {}, models=models or list(catalog_models(user=AnonymousUser())))


def upload(name="in.png", kind="PNG", size=(32, 32)):
    return SimpleUploadedFile(name, image_bytes(kind, size), content_type=f"image/{kind.lower()}")


def errors_at(form, field) -> str:
    assert not form.is_valid()
    return " ".join(form.errors[field])


def test_a_plain_request_is_valid():
    form = make_form()
    assert form.is_valid(), form.errors
    assert form.cleaned_data["model"].id == "ir/test-video"


def test_the_model_select_offers_only_video_models_with_prices():
    labels = dict(make_form().fields["model"].choices)
    assert "ir/test-video" in labels
    assert "free" in labels["ir/test-video"]
    assert all("image" not in model_id for model_id in labels if model_id.startswith("openai/gpt"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        pytest.param(
            "prompt",
            "",
            "ir/test-video needs a prompt. Describe the video you want.",
            id="empty-prompt",
        ),
        pytest.param(
            "prompt",
            "x" * 10_001,
            "This prompt is 10,001 characters long; the most ImageRouter takes is 10,000. "
            "Shorten it and try again.",
            id="long-prompt",
        ),
        pytest.param("size", "big", "Enter auto, or a size such as 1280x720.", id="size-word"),
        pytest.param("size", "1280x", "Enter auto, or a size such as 1280x720.", id="size-half"),
        pytest.param("size", "1280 by 720", "such as 1280x720", id="size-by"),
        pytest.param("size", "1" * 30, "such as 1280x720", id="size-too-long-to-read"),
        pytest.param("seconds", "0", "from 1 to 60", id="seconds-zero"),
        pytest.param("seconds", "ten", "from 1 to 60", id="seconds-word"),
        pytest.param(
            "seconds",
            "10",
            "ir/test-video makes videos of 5 seconds. Choose one of those, or auto.",
            id="seconds-not-offered",
        ),
        pytest.param(
            "model",
            "foo/bar",
            "“foo/bar” is not a model this studio offers. Choose one from the list.",
            id="unknown-model",
        ),
        pytest.param("model", "", "Choose a model from the list.", id="no-model"),
        pytest.param("response_format", "gif", "Select a valid choice", id="response-format"),
    ],
)
def test_bad_input_is_refused_at_its_field(field, value, message):
    assert message in errors_at(make_form(**{field: value}), field)


def test_a_blank_prompt_is_refused_like_an_empty_one():
    form = make_form(prompt=" \n\t ")
    assert "needs a prompt" in errors_at(form, "prompt")


def test_a_prompt_of_exactly_the_limit_is_accepted():
    assert make_form(prompt="x" * 10_000).is_valid()


def test_a_typed_line_break_counts_as_one_character():
    # A browser sends a line break as \r\n but counts it as one against maxlength.
    prompt = "\r\n".join(["x" * 99] * 99 + ["x" * 100])  # 10,000 as typed, 10,099 as sent

    form = make_form(prompt=prompt)

    assert form.is_valid(), form.errors
    assert len(form.cleaned_data["prompt"]) == 10_000


def test_the_prompt_box_stops_typing_at_the_limit():
    assert 'maxlength="10000"' in str(make_form()["prompt"])


def test_a_model_without_image_input_always_needs_a_prompt():
    form = make_form(model="openai/sora-2", seconds="4", prompt="", files={"image": upload()})

    assert "openai/sora-2 needs a prompt" in errors_at(form, "prompt")
    assert "does not take an input image" in form.errors["image"][0]


def test_an_image_to_video_model_without_an_image_needs_a_prompt():
    form = make_form(model="kling/kling-2.1-standard", prompt="")
    assert errors_at(form, "prompt") == (
        "kling/kling-2.1-standard needs a prompt. Describe the video you want."
    )


def test_an_image_to_video_model_given_an_image_may_run_without_a_prompt():
    form = make_form(model="kling/kling-2.1-standard", prompt="", files={"image": upload()})
    assert form.is_valid(), form.errors


def test_a_refused_image_does_not_also_ask_for_a_prompt():
    junk = SimpleUploadedFile("in.png", b"not an image", content_type="image/png")
    form = make_form(model="kling/kling-2.1-standard", prompt="", files={"image": junk})

    assert not form.is_valid()
    assert "prompt" not in form.errors
    assert "not an image" in form.errors["image"][0]


@pytest.mark.parametrize("size", ["1280x720", "1280X720", "1280×720", "1280*720", " 1280 x 720 "])
def test_every_separator_the_api_takes_is_read_and_normalised(size):
    form = make_form(model="kling/kling-2.1-standard", seconds="5", size=size)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["size"] == "1280x720"


def test_a_size_the_model_does_not_make_is_refused_with_the_sizes_it_does():
    form = make_form(model="kling/kling-2.1-standard", size="1920x1080")
    assert errors_at(form, "size") == (
        "kling/kling-2.1-standard makes these sizes: 1280x720, 720x1280 or 960x960. "
        "Choose one of those, or auto."
    )


@pytest.mark.parametrize("size", ["64x64", "4096x64", "1280x720", "auto"])
def test_a_model_that_lists_no_sizes_takes_any_size_within_bounds(size):
    form = make_form(models=[sizeless_model()], model="test/any-size", size=size)
    assert form.is_valid(), form.errors


@pytest.mark.parametrize("size", ["63x720", "1280x4097", "0x0", "100000x100000"])
def test_a_model_that_lists_no_sizes_refuses_a_side_out_of_bounds(size):
    form = make_form(models=[sizeless_model()], model="test/any-size", size=size)
    assert errors_at(form, "size") == (
        f"Width and height must each be from 64 to 4,096 pixels; {size} is not. "
        "Enter another size, or auto."
    )


def test_seconds_outside_the_models_durations_are_refused_with_the_ones_it_makes():
    form = make_form(model="openai/sora-2", seconds="5")
    assert errors_at(form, "seconds") == (
        "openai/sora-2 makes videos of 4, 8 or 12 seconds. Choose one of those, or auto."
    )


def test_an_image_for_a_model_without_image_input_is_refused():
    form = make_form(model="openai/sora-2", seconds="4", files={"image": upload()})
    assert errors_at(form, "image") == (
        "openai/sora-2 does not take an input image. Remove the image, or choose a model "
        "marked “image → video”."
    )


# Through the real view: the message shows at its field, and nothing is saved or charged.


def a_file(name, make_data, content_type):
    """An upload made when the test runs, not when the module is collected."""
    return lambda: SimpleUploadedFile(name, make_data(), content_type=content_type)


def truncated_jpeg() -> bytes:
    data = image_bytes("JPEG", (256, 256), noise=True)
    return data[: len(data) * 6 // 10]


# Uploads the image field refuses, two lines each: id, file name, its bytes (made when the
# test runs), its content type, and the message.
REFUSED_UPLOADS = [
    ("not-an-image", "notes.txt", lambda: b"just some notes\n" * 20, "text/plain",
     "This file is not an image. Choose a PNG, JPEG or WebP picture."),
    ("gif", "in.gif", lambda: image_bytes("GIF"), "image/gif",
     "GIF images are not accepted: use PNG, JPEG or WebP."),
    ("too-many-bytes", "in.png", lambda: image_bytes() + bytes(11 * MEGABYTE - 1000), "image/png",
     "This file is 11 MB; the most we accept is 10 MB. Save a smaller image and try again."),
    ("decompression-bomb", "bomb.png", lambda: blank_png(20_000, 20_000), "image/png",
     "This image is 20000 × 20000 pixels; the most we accept is 40 megapixels."),
    ("jpeg-named-png", "photo.png", lambda: image_bytes("JPEG"), "image/png",
     "This file is named .png but holds a JPEG image. Rename it to end in .jpg and try again."),
    ("png-sent-as-jpeg", "photo", image_bytes, "image/jpeg",
     "This file was sent as image/jpeg but holds a PNG image."),
    ("truncated-jpeg", "cut.jpg", truncated_jpeg, "image/jpeg",
     "not an image we can read"),
]  # fmt: skip

REFUSED_SUBMITS = [
    pytest.param(
        {"model": "openai/sora-2", "seconds": "4", "prompt": "   "},
        None,
        "prompt",
        "openai/sora-2 needs a prompt. Describe the video you want.",
        id="blank-prompt",
    ),
    pytest.param(
        {"prompt": "x" * 10_001},
        None,
        "prompt",
        "This prompt is 10,001 characters long; the most ImageRouter takes is 10,000.",
        id="long-prompt",
    ),
    pytest.param(
        {"size": "huge"}, None, "size", "Enter auto, or a size such as 1280x720.", id="bad-size"
    ),
    pytest.param(
        {"model": "kling/kling-2.1-standard", "seconds": "5", "size": "1920x1080"},
        None,
        "size",
        "kling/kling-2.1-standard makes these sizes: 1280x720, 720x1280 or 960x960.",
        id="size-not-offered",
    ),
    pytest.param(
        {"model": "test/any-size", "seconds": "5", "size": "8000x720"},
        None,
        "size",
        "Width and height must each be from 64 to 4,096 pixels; 8000x720 is not.",
        id="size-out-of-bounds",
    ),
    pytest.param(
        {"model": "kling/kling-2.1-standard", "seconds": "7"},
        None,
        "seconds",
        "kling/kling-2.1-standard makes videos of 5 or 10 seconds.",
        id="seconds-not-offered",
    ),
    pytest.param(
        {"model": "foo/bar"},
        None,
        "model",
        "“foo/bar” is not a model this studio offers. Choose one from the list.",
        id="unknown-model",
    ),
    pytest.param(
        {"model": "openai/sora-2", "seconds": "4"},
        a_file("in.png", image_bytes, "image/png"),
        "image",
        "openai/sora-2 does not take an input image.",
        id="image-for-text-only-model",
    ),
    *(
        pytest.param({}, a_file(name, make_data, content_type), "image", message, id=id_)
        for id_, name, make_data, content_type, message in REFUSED_UPLOADS
    ),
]


@pytest.fixture
def alice_with_a_budget(alice):
    set_budget(alice, "5.00")
    return alice


@pytest.mark.parametrize(("fields", "file", "field", "message"), REFUSED_SUBMITS)
def test_a_refused_submit_shows_why_at_the_field_and_saves_and_charges_nothing(
    alice_client, alice_with_a_budget, media_root, fields, file, field, message
):
    sizeless_model().save()
    data = {**FIELDS, **fields}
    if file:
        data["image"] = file()

    response = alice_client.post(reverse("jobs:create"), data)

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert message in html.unescape(response.content.decode())
    assert not Job.objects.exists()
    assert not CostEntry.objects.exists()
    assert not [path for path in Path(media_root).rglob("*") if path.is_file()]
    assert Budget.objects.get(user=alice_with_a_budget).locked_at is None
    assert selectors.budget_status_for_user(user=alice_with_a_budget).used == 0
