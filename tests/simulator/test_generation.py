"""Successful generations: the documented requests, the rendered MP4s and the response shape."""

import base64
import json
import shutil
import subprocess
import time

import pytest

from simulator import render

from .videos import data_uri, decodes_fully, frame, mean_difference, png_bytes, probe

CURL = shutil.which("curl")


def run_curl(args: list[str], cwd) -> dict:
    result = subprocess.run(
        [CURL, "--silent", "--show-error", "--noproxy", "*", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(result.stdout)


# The provider's documentation, verbatim apart from the hosts (and so the image URL, since the
# simulator fetches images only from loopback addresses).
DOCS_JSON_EXAMPLE = """{
"prompt": "YOUR_PROMPT",
"model": "ir/test-video",
"size": "auto",
"seconds": "auto",
"response_format": "url",
"image": "https://example.com/your_image.jpg"
}"""


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_the_docs_json_curl_example_works(sim, image_server, tmp_path, download):
    body = run_curl(
        [
            f"{sim.url}/v1/openai/videos/generations",
            *("-H", "Authorization: Bearer YOUR_API_KEY"),
            "--json",
            DOCS_JSON_EXAMPLE.replace(
                "https://example.com/your_image.jpg", f"{image_server}/blue.png"
            ),
        ],
        tmp_path,
    )

    assert body["cost"] == 0
    info = probe(download(body["data"][0]["url"]))
    assert (info.codec, info.width, info.height, info.seconds) == ("h264", 640, 360, 5.0)


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_the_docs_text_to_video_curl_example_works(sim, tmp_path):
    body = run_curl(
        [
            f"{sim.url}/v1/openai/videos/generations",
            *("-H", "Authorization: Bearer YOUR_API_KEY"),
            "--json",
            '{"prompt": "YOUR_PROMPT", "model": "ir/test-video", "size": "auto", "seconds": "auto"}',
        ],
        tmp_path,
    )

    assert set(body) == {"created", "data", "latency", "cost"}
    assert body["data"][0]["url"].startswith(f"{sim.url}/storage/")


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_the_docs_form_data_curl_example_works(sim, tmp_path, download):
    (tmp_path / "your_image1.webp").write_bytes(png_bytes(fmt="WEBP"))

    body = run_curl(
        [
            f"{sim.url}/v1/openai/videos/generations",
            *("-H", "Authorization: Bearer YOUR_API_KEY"),
            *("-F", "prompt=YOUR_PROMPT"),
            *("-F", "model=ir/test-video"),
            *("-F", "size=auto"),
            *("-F", "seconds=auto"),
            *("-F", "response_format=url"),
            *("-F", "image[]=@your_image1.webp"),
        ],
        tmp_path,
    )

    video = download(body["data"][0]["url"])
    assert probe(video).codec == "h264"
    # The uploaded picture is red; the video pans over it.
    red, green, blue = frame(video, 2.0).resize((1, 1)).getpixel((0, 0))
    assert red > 150 and green < 90 and blue < 90


def test_the_video_has_the_requested_size_and_duration(generate, download):
    response = generate(
        {"model": "kling/kling-2.1-standard", "prompt": "a fox", "size": "320x240", "seconds": 10}
    )

    info = probe(download(response.json()["data"][0]["url"]))
    assert (info.codec, info.width, info.height, info.seconds) == ("h264", 320, 240, 10.0)


def test_odd_sizes_are_rounded_to_even_ones_and_every_separator_works(generate, download):
    response = generate({"model": "ir/test-video", "prompt": "odd", "size": "321×179"})

    info = probe(download(response.json()["data"][0]["url"]))
    assert (info.width, info.height) == (322, 180)


def test_auto_uses_the_models_first_size_and_default_seconds(generate, download):
    response = generate({"model": "google/veo-3.1-fast", "prompt": "auto everything"})

    info = probe(download(response.json()["data"][0]["url"]))
    assert (info.width, info.height, info.seconds) == (1280, 720, 4.0)


def test_seconds_outside_the_models_list_fall_back_to_its_default(generate, download):
    response = generate({"model": "ir/test-video", "prompt": "too long", "seconds": "9"})

    assert response.status_code == 200
    assert probe(download(response.json()["data"][0]["url"])).seconds == 5.0


def test_two_prompts_give_visibly_different_videos(generate, download):
    first = download(
        generate({"model": "ir/test-video", "prompt": "a cat"}).json()["data"][0]["url"]
    )
    second = download(
        generate({"model": "ir/test-video", "prompt": "a lighthouse in a storm"}).json()["data"][0][
            "url"
        ]
    )

    assert mean_difference(frame(first, 1.0), frame(second, 1.0)) > 20


def test_the_frames_move(generate, download):
    video = download(
        generate({"model": "ir/test-video", "prompt": "moving"}).json()["data"][0]["url"]
    )

    assert mean_difference(frame(video, 0.5), frame(video, 3.5)) > 5


def test_image_to_video_pans_over_a_data_uri_image(generate, download):
    image = data_uri(png_bytes(color=(30, 200, 40)))

    response = generate({"model": "kling/kling-2.1-standard", "size": "320x180", "image": image})

    video = download(response.json()["data"][0]["url"])
    red, green, blue = frame(video, 1.0).resize((1, 1)).getpixel((0, 0))
    assert green > 150 and red < 90 and blue < 90


def test_image_to_video_takes_an_uploaded_png(generate, download):
    response = generate(
        {"model": "ir/test-video", "prompt": "upload"},
        files={"image[]": ("pic.png", png_bytes(color=(230, 230, 20)), "image/png")},
    )

    video = download(response.json()["data"][0]["url"])
    red, green, blue = frame(video, 1.0).resize((1, 1)).getpixel((0, 0))
    assert red > 150 and green > 150 and blue < 90


def test_image_to_video_fetches_a_loopback_url(generate, download, image_server):
    response = generate({"model": "ir/test-video", "image": [f"{image_server}/blue.png"]})

    video = download(response.json()["data"][0]["url"])
    red, _, blue = frame(video, 1.0).resize((1, 1)).getpixel((0, 0))
    assert blue > 150 and red < 90


def test_b64_json_returns_the_video_inline_and_stores_it(generate, tmp_path, storage_dir):
    before = stored_videos(storage_dir)

    response = generate(
        {"model": "ir/test-video", "prompt": "inline", "response_format": "b64_json"}
    )

    video = tmp_path / "inline.mp4"
    video.write_bytes(base64.b64decode(response.json()["data"][0]["b64_json"]))
    assert probe(video).seconds == 5.0
    assert decodes_fully(video)
    assert stored_videos(storage_dir) == before + 1


def test_b64_ephemeral_returns_the_video_inline_and_keeps_nothing(generate, tmp_path, storage_dir):
    before = stored_videos(storage_dir)

    response = generate(
        {"model": "ir/test-video", "prompt": "ephemeral", "response_format": "b64_ephemeral"}
    )

    video = tmp_path / "ephemeral.mp4"
    video.write_bytes(base64.b64decode(response.json()["data"][0]["b64_json"]))
    assert probe(video).codec == "h264"
    assert stored_videos(storage_dir) == before
    assert not any((storage_dir / "work").iterdir())


def stored_videos(storage_dir) -> int:
    return len(list(storage_dir.glob("*.mp4")))


def test_the_test_model_stamps_created_in_seconds_and_priced_models_in_milliseconds(generate):
    now = time.time()

    free = generate({"model": "ir/test-video", "prompt": "t"}).json()
    priced = generate({"model": "openai/sora-2", "prompt": "t", "size": "320x180"}).json()

    assert abs(free["created"] - now) < 60
    assert abs(priced["created"] / 1000 - now) < 60


def test_the_response_reports_latency_and_cost(generate):
    body = generate(
        {"model": "kling/kling-2.1-standard", "prompt": "p", "size": "640x360"},
        headers={"X-Sim-Latency": "0.3"},
    ).json()

    assert body["latency"] >= 300
    # calculated: min + (max - min) * (5 s / 10 s) * (640x360 / 1280x720) = 0.18 + 0.32 / 8
    assert body["cost"] == 0.22


def test_it_prints_the_render_time_of_five_seconds_at_640x360(tmp_path):
    started = time.monotonic()
    render.render_text_video("a render-time probe", 640, 360, 5, tmp_path / "timed.mp4")
    elapsed = time.monotonic() - started

    print(f"\nrender time, 5 s at 640x360: {elapsed:.3f} s")
    assert probe(tmp_path / "timed.mp4").seconds == 5.0
