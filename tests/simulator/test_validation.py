"""Requests the provider refuses before any work: 401 and 400, never charged."""

import pytest

from .videos import GENERATIONS, png_bytes

VALID = {"model": "ir/test-video", "prompt": "fine"}


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Authorization header is required"),
        ("Bearer ", "Invalid authorization token length: 0"),
        ("Bearer    ", "Invalid authorization token length: 0"),
        ("Basic abc", "Invalid authorization token length: 0"),
    ],
)
def test_it_refuses_a_missing_or_empty_bearer_key_with_401(sim, http, authorization, message):
    headers = {"Authorization": authorization} if authorization else {}

    response = http.post(sim.url + GENERATIONS, json=VALID, headers=headers)

    assert response.status_code == 401
    assert response.json() == {"error": {"message": message, "type": "unauthorized"}}
    assert sim.stats()["rejected"] == 1


def test_any_non_empty_key_is_accepted(generate):
    assert generate(VALID, key="x").status_code == 200


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"prompt": "no model"}, "'model' is a required parameter"),
        ({"model": ""}, "'model' is a required parameter"),
        ({"model": 5}, "'model' must be a string"),
        (
            {"model": "ir/test-video", "prompt": "x" * 10_001},
            "'prompt' must be at most 10000 characters",
        ),
        (
            {**VALID, "response_format": "mp4"},
            "'response_format' must be one of 'url', 'b64_json' or 'b64_ephemeral'",
        ),
        (
            {**VALID, "size": "big"},
            "'size' must be 'auto' or in the format 'WIDTHxHEIGHT' (e.g. '1024x768')",
        ),
        (
            {**VALID, "size": "640 x 360"},
            "'size' must be 'auto' or in the format 'WIDTHxHEIGHT' (e.g. '1024x768')",
        ),
        (
            {**VALID, "size": "0x360"},
            "'size' must be 'auto' or in the format 'WIDTHxHEIGHT' (e.g. '1024x768')",
        ),
        ({**VALID, "seconds": "long"}, "'seconds' must be 'auto' or a number from 1 to 60"),
        ({**VALID, "seconds": 0}, "'seconds' must be 'auto' or a number from 1 to 60"),
        ({**VALID, "seconds": 61}, "'seconds' must be 'auto' or a number from 1 to 60"),
        ({"model": "acme/nope"}, "model 'acme/nope' is not available"),
        (
            {"model": "openai/gpt-image-1", "prompt": "a cat"},
            "'openai/gpt-image-1' is an image model. Please use the image generation endpoint.",
        ),
        (
            {"model": "openai/sora-2", "image": "data:image/png;base64,AAAA"},
            "This model does not support image inputs",
        ),
        ({**VALID, "image": ["data:,x"] * 7}, "Maximum of 6 images can be uploaded"),
    ],
)
def test_it_refuses_an_invalid_request_with_400(generate, sim, payload, message):
    response = generate(payload)

    assert response.status_code == 400
    assert response.json() == {"error": {"message": message, "type": "invalid_request_error"}}
    assert sim.stats()["rejected"] == 1
    assert sim.stats()["paid_calls"] == 0


def test_it_refuses_malformed_json_with_400(sim, http):
    response = http.post(
        sim.url + GENERATIONS,
        data=b'{"model": "ir/test-video",',
        headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["message"].startswith("Malformed JSON in request body")


def test_it_refuses_an_indexed_image_field_like_multer_does(generate):
    files = {"image[0]": ("a.png", png_bytes(), "image/png")}

    response = generate(VALID, files=files)

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "File upload error: Unexpected field"


def test_it_refuses_more_than_six_uploaded_images(generate):
    files = [("image[]", (f"{n}.png", png_bytes(), "image/png")) for n in range(7)]

    response = generate(VALID, files=files)

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "File upload error: Unexpected field"


def test_it_accepts_six_uploaded_images_and_uses_the_first(generate):
    files = [("image", (f"{n}.png", png_bytes(), "image/png")) for n in range(6)]

    assert generate(VALID, files=files).status_code == 200


def test_it_refuses_an_image_url_that_is_not_on_loopback(generate, sim):
    response = generate({**VALID, "image": "https://example.com/your_image.jpg"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(
        "Failed to fetch image from URL 'https://example.com/your_image.jpg'"
    )
    assert sim.stats()["paid_calls"] == 0


def test_it_refuses_an_image_it_cannot_read(generate):
    files = {"image[]": ("a.png", b"not a picture", "image/png")}

    response = generate(VALID, files=files)

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("The input image could not be read")


def test_a_missing_loopback_image_is_a_400_too(generate, image_server):
    response = generate({**VALID, "image": f"{image_server}/missing.png"})

    assert response.status_code == 400
    assert "404" in response.json()["error"]["message"]


@pytest.mark.parametrize("latency", ["soon", "-1"])
def test_a_bad_latency_header_is_a_400(generate, latency):
    response = generate(VALID, headers={"X-Sim-Latency": latency})

    assert response.status_code == 400
    assert "X-Sim-Latency" in response.json()["error"]["message"]
