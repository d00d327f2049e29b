"""Videos and uploads are private: served only by owner-checked views, with Range, or by nginx."""

from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job
from tests.factories import new_job
from tests.helpers import run_job_now

# 1,000 bytes that differ from their neighbours, so a test can tell which bytes came back.
VIDEO = bytes(range(250)) * 4
SIZE = len(VIDEO)
PNG = b"\x89PNG\r\n\x1a\n" + b"not really pixels"


def body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


@pytest.fixture
def alices_video(alice):
    job = new_job(alice, "a heron lands", status=Job.Status.SUCCEEDED)
    job.video.save("clip.mp4", ContentFile(VIDEO))
    return job


def with_image(job, name, data=PNG):
    job.input_image.save(name, ContentFile(data))
    return job


@pytest.fixture
def alices_image_job(alice):
    return with_image(new_job(alice, "zoom in"), "garden.png")


def get_video(client, job, range_header=None, **params):
    headers = {"Range": range_header} if range_header else {}
    return client.get(reverse("jobs:video", args=[job.pk]), params, headers=headers)


# --- Range -----------------------------------------------------------------------------------


def test_without_a_range_the_whole_video_comes_back_with_200(alice_client, alices_video):
    response = get_video(alice_client, alices_video)

    assert response.status_code == 200
    assert body(response) == VIDEO
    assert response["Content-Length"] == str(SIZE)
    assert not response.has_header("Content-Range")


def test_safari_probe_gets_two_bytes(alice_client, alices_video):
    response = get_video(alice_client, alices_video, "bytes=0-1")

    assert response.status_code == 206
    assert body(response) == VIDEO[:2]
    assert response["Content-Range"] == f"bytes 0-1/{SIZE}"
    assert response["Content-Length"] == "2"


def test_an_open_range_gets_the_rest_of_the_video(alice_client, alices_video):
    response = get_video(alice_client, alices_video, "bytes=100-")

    assert response.status_code == 206
    assert body(response) == VIDEO[100:]
    assert response["Content-Range"] == f"bytes 100-{SIZE - 1}/{SIZE}"
    assert response["Content-Length"] == str(SIZE - 100)


def test_a_suffix_range_gets_the_last_bytes(alice_client, alices_video):
    response = get_video(alice_client, alices_video, "bytes=-500")

    assert response.status_code == 206
    assert body(response) == VIDEO[-500:]
    assert response["Content-Range"] == f"bytes {SIZE - 500}-{SIZE - 1}/{SIZE}"


def test_a_suffix_longer_than_the_video_gets_all_of_it_as_206(alice_client, alices_video):
    response = get_video(alice_client, alices_video, f"bytes=-{SIZE * 10}")

    assert response.status_code == 206
    assert body(response) == VIDEO
    assert response["Content-Range"] == f"bytes 0-{SIZE - 1}/{SIZE}"


def test_a_range_ending_past_the_video_stops_at_its_last_byte(alice_client, alices_video):
    response = get_video(alice_client, alices_video, f"bytes=900-{SIZE * 10}")

    assert response.status_code == 206
    assert body(response) == VIDEO[900:]
    assert response["Content-Range"] == f"bytes 900-{SIZE - 1}/{SIZE}"


@pytest.mark.parametrize(
    "range_header", [f"bytes={SIZE}-", f"bytes={SIZE + 50}-{SIZE + 60}", "bytes=-0"]
)
def test_a_range_past_the_end_gets_416_with_the_size(alice_client, alices_video, range_header):
    response = get_video(alice_client, alices_video, range_header)

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{SIZE}"
    assert body(response) == b""


def test_several_ranges_get_the_whole_video_with_200(alice_client, alices_video):
    response = get_video(alice_client, alices_video, "bytes=0-1,4-5")

    assert response.status_code == 200
    assert body(response) == VIDEO
    assert not response.has_header("Content-Range")


@pytest.mark.parametrize("range_header", ["bytes=5-2", "bytes=-", "items=0-1", "bytes=abc"])
def test_a_range_that_is_not_valid_syntax_is_ignored(alice_client, alices_video, range_header):
    response = get_video(alice_client, alices_video, range_header)

    assert response.status_code == 200
    assert body(response) == VIDEO


@pytest.mark.parametrize(
    "range_header",
    [None, "bytes=0-1", "bytes=100-", "bytes=-500", f"bytes={SIZE}-", "bytes=0-1,4-5"],
)
def test_every_video_answer_is_typed_private_and_not_sniffed(
    alice_client, alices_video, range_header
):
    response = get_video(alice_client, alices_video, range_header)

    assert response["Content-Type"] == "video/mp4"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"].startswith("private")
    assert response["Accept-Ranges"] == "bytes"


def test_the_download_link_names_the_video_as_an_attachment(alice_client, alices_video):
    response = get_video(alice_client, alices_video, download="1")

    assert response["Content-Disposition"] == f'attachment; filename="{alices_video.pk}.mp4"'
    assert body(response) == VIDEO


def test_a_video_missing_from_storage_is_404_not_a_crash(alice_client, alices_video):
    alices_video.video.storage.delete(alices_video.video.name)

    assert get_video(alice_client, alices_video).status_code == 404


# --- X-Accel-Redirect --------------------------------------------------------------------------


@pytest.fixture
def accel(settings):
    settings.MEDIA_X_ACCEL_PREFIX = "/protected/"


@pytest.mark.usefixtures("accel")
def test_with_an_accel_prefix_nginx_serves_the_video_not_django(alice_client, alices_video):
    response = get_video(alice_client, alices_video, "bytes=0-1")

    assert response.status_code == 200  # nginx answers the Range itself
    assert not response.streaming and response.content == b""
    assert response["X-Accel-Redirect"] == f"/protected/{alices_video.video.name}"
    assert response["Content-Type"] == "video/mp4"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"].startswith("private")
    assert not response.has_header("Content-Range")
    assert not response.has_header("Content-Disposition")


@pytest.mark.usefixtures("accel")
def test_with_an_accel_prefix_a_download_keeps_its_attachment_name(alice_client, alices_video):
    response = get_video(alice_client, alices_video, download="1")

    assert response["X-Accel-Redirect"] == f"/protected/{alices_video.video.name}"
    assert response["Content-Disposition"] == f'attachment; filename="{alices_video.pk}.mp4"'


@pytest.mark.usefixtures("accel")
def test_the_accel_redirect_quotes_the_storage_name(alice_client, alice):
    job = Job.objects.create(owner=alice, model="ir/test-video", status=Job.Status.SUCCEEDED)
    job.video.save("café.mp4", ContentFile(VIDEO))

    response = get_video(alice_client, job)

    assert job.video.name.endswith("café.mp4")
    assert response["X-Accel-Redirect"].endswith("/caf%C3%A9.mp4")
    assert response["X-Accel-Redirect"].startswith("/protected/videos/")


@pytest.mark.usefixtures("accel")
@pytest.mark.parametrize("name", ["jobs:video", "jobs:image"])
def test_bob_gets_404_and_no_accel_header_with_the_prefix_set(client, bob, alices_video, name):
    with_image(alices_video, "garden.png")
    url = reverse(name, args=[alices_video.pk])

    anonymous = client.get(url)
    client.force_login(bob)
    as_bob = client.get(url)
    as_bob_ranged = client.get(url, headers={"Range": "bytes=0-1"})

    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    assert as_bob.status_code == 404 and as_bob_ranged.status_code == 404
    for response in (anonymous, as_bob, as_bob_ranged):
        assert not response.has_header("X-Accel-Redirect")


@pytest.mark.usefixtures("accel")
def test_with_an_accel_prefix_the_input_image_goes_through_nginx_too(
    alice_client, alices_image_job
):
    response = alice_client.get(reverse("jobs:image", args=[alices_image_job.pk]))

    assert response["X-Accel-Redirect"] == f"/protected/{alices_image_job.input_image.name}"
    assert response["Content-Type"] == "image/png"
    assert response.content == b""


# --- The input image ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("garden.png", "image/png"),
        ("garden.jpg", "image/jpeg"),
        ("garden.jpeg", "image/jpeg"),
        ("GARDEN.JPG", "image/jpeg"),
        ("garden.webp", "image/webp"),
    ],
)
def test_the_owner_gets_their_input_image_typed_by_its_extension(
    alice_client, alice, filename, content_type
):
    job = with_image(Job.objects.create(owner=alice, model="ir/test-video"), filename)

    response = alice_client.get(reverse("jobs:image", args=[job.pk]))

    assert response.status_code == 200
    assert body(response) == PNG
    assert response["Content-Type"] == content_type
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"].startswith("private")
    assert not response.has_header("Content-Disposition")


@pytest.mark.parametrize("filename", ["page.html", "drawing.svg", "anim.gif", "noextension"])
def test_an_upload_with_another_extension_is_never_served(alice_client, alice, filename):
    job = with_image(Job.objects.create(owner=alice, model="ir/test-video"), filename)

    assert alice_client.get(reverse("jobs:image", args=[job.pk])).status_code == 404


def test_a_job_without_an_input_image_has_no_image(alice_client, alices_video):
    assert alice_client.get(reverse("jobs:image", args=[alices_video.pk])).status_code == 404


def test_bob_gets_404_on_alices_input_image(client, bob, alices_image_job):
    client.force_login(bob)

    response = client.get(reverse("jobs:image", args=[alices_image_job.pk]))

    assert response.status_code == 404
    assert PNG not in response.content


def test_staff_can_see_anyones_input_image(admin_client, alices_image_job):
    response = admin_client.get(reverse("jobs:image", args=[alices_image_job.pk]))

    assert response.status_code == 200 and body(response) == PNG


def test_a_deleted_jobs_image_and_video_are_gone_even_if_the_files_remain(
    alice_client, alices_video
):
    with_image(alices_video, "garden.png")
    Job.objects.filter(pk=alices_video.pk).update(deleted_at=timezone.now())

    assert alice_client.get(reverse("jobs:image", args=[alices_video.pk])).status_code == 404
    assert get_video(alice_client, alices_video).status_code == 404


def test_the_job_page_shows_the_input_image_as_a_thumbnail(alice_client, alices_image_job):
    html = alice_client.get(reverse("jobs:detail", args=[alices_image_job.pk])).content.decode()

    image_url = reverse("jobs:image", args=[alices_image_job.pk])
    assert f'<img class="input-thumb" src="{image_url}" alt="Your input image">' in html
    assert " style=" not in html  # the Content-Security-Policy forbids inline styles


def test_the_job_page_says_none_without_an_input_image(alice_client, alices_video):
    html = alice_client.get(reverse("jobs:detail", args=[alices_video.pk])).content.decode()

    assert "<dt>Input image</dt><dd>none</dd>" in html
    assert reverse("jobs:image", args=[alices_video.pk]) not in html


# --- No public path ----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/media/", "/static/", "/"])
def test_stored_videos_and_uploads_have_no_public_path(client, alice, alices_video, prefix):
    with_image(alices_video, "garden.png")

    for signed_in in (False, True):
        if signed_in:
            client.force_login(alice)
        for name in (alices_video.video.name, alices_video.input_image.name):
            response = client.get(prefix + name)
            assert response.status_code == 404, f"{prefix}{name} signed in: {signed_in}"
            assert VIDEO not in response.content and PNG not in response.content


@pytest.mark.usefixtures("catalog")
def test_the_providers_url_never_reaches_the_owner(alice_client, alice, simulator):
    job = Job.objects.create(owner=alice, prompt="a fox in snow", model="ir/test-video")
    run_job_now(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.provider_url, job.error
    provider_path = urlsplit(job.provider_url).path

    pages = {
        "job page": alice_client.get(reverse("jobs:detail", args=[job.pk])),
        "status fragment": alice_client.get(reverse("jobs:status", args=[job.pk])),
        "My videos": alice_client.get(reverse("jobs:list")),
    }
    video = get_video(alice_client, job, "bytes=0-1")

    for what, response in pages.items():
        html = response.content.decode()
        assert reverse("jobs:video", args=[job.pk]) in html or what == "My videos"
        assert job.provider_url not in html, what
        assert provider_path not in html, what
    assert video.status_code == 206
    for header, value in video.items():
        assert job.provider_url not in value and provider_path not in value, header
