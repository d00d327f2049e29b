"""The generate form: every bad input gets a message at its field."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from jobs.forms import JobForm
from jobs.selectors import catalog_models

pytestmark = pytest.mark.usefixtures("catalog")


def make_form(files=None, **data):
    fields = {
        "prompt": "a lighthouse in a storm",
        "model": "ir/test-video",
        "size": "auto",
        "seconds": "auto",
        "response_format": "url",
        **data,
    }
    return JobForm(fields, files or {}, models=list(catalog_models()))


def upload(name="in.png", kind="PNG", size=(32, 32)):
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, kind)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=f"image/{kind.lower()}")


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
        ("prompt", "", "Describe the video"),
        ("prompt", "x" * 10_001, "at most 10000 characters"),
        ("size", "big", "such as 1280x720"),
        ("seconds", "0", "from 1 to 60"),
        ("seconds", "ten", "from 1 to 60"),
        ("seconds", "10", "makes videos of 5 seconds"),
        ("model", "no/such-model", "Select a valid choice"),
        ("response_format", "gif", "Select a valid choice"),
    ],
)
def test_bad_input_is_refused_at_its_field(field, value, message):
    form = make_form(**{field: value})

    assert not form.is_valid()
    assert message in " ".join(form.errors[field])


def test_sizes_are_normalised():
    form = make_form(model="kling/kling-2.1-standard", seconds="5", size="1280 X 720")
    form.is_valid()
    assert form.cleaned_data.get("size") == "1280x720"


def test_a_png_upload_is_accepted():
    form = make_form(files={"image": upload()})
    assert form.is_valid(), form.errors


def test_an_upload_that_is_not_an_image_is_refused():
    junk = SimpleUploadedFile("in.png", b"not really a png", content_type="image/png")
    form = make_form(files={"image": junk})

    assert not form.is_valid()
    assert "not an image" in form.errors["image"][0]


def test_a_gif_is_refused_even_though_it_is_an_image():
    form = make_form(files={"image": upload("in.gif", "GIF")})

    assert not form.is_valid()
    assert "PNG, JPEG or WebP" in form.errors["image"][0]


def test_an_image_for_a_model_without_image_input_is_refused():
    form = make_form(model="openai/sora-2", seconds="4", files={"image": upload()})

    assert not form.is_valid()
    assert "does not take an input image" in form.errors["image"][0]
