"""Videos on S3 (STORAGE_BACKEND=s3): jobs store into a private bucket, and a person who may see a
file is redirected to a short-lived signed URL for it, against a real S3 server (tests/s3.py)."""

import io
import json
import time
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from storages.backends.s3 import S3Storage

from jobs import services
from jobs.models import Job
from tests.factories import form_data, stored_job
from tests.helpers import run_job_now, run_with_settings
from tests.media import image_bytes
from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from videostudio.settings import s3_storage, s3_url_origin

# broker_url: a URL result sends its store task, which must go to the tests' Redis database.
pytestmark = pytest.mark.usefixtures("catalog", "broker_url")

PROMPT = "a paper boat on a rain-swept street"


@pytest.fixture(scope="module")
def s3_server():
    with S3Server() as server:
        yield server


@pytest.fixture
def bucket(s3_server, settings):
    """A new bucket of the test's own, and the studio storing in it as STORAGE_BACKEND=s3 sets it
    up. Changing STORAGES resets django's cached default_storage (django.test.signals)."""
    name = f"videos-{uuid.uuid4().hex[:12]}"
    s3_server.client.create_bucket(Bucket=name)
    use_bucket(settings, s3_server, name)
    assert default_storage.bucket_name == name
    return name


def use_bucket(settings, server, name, url_expiry=60):
    backend = s3_storage(
        bucket=name,
        endpoint_url=server.url,
        region=REGION,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        url_expiry=url_expiry,
    )
    settings.STORAGES = {**settings.STORAGES, "default": backend}


@pytest.fixture
def browser():
    """Fetches the signed URLs as a person's browser would, straight to the S3 server."""
    session = requests.Session()
    session.trust_env = False  # loopback, whatever proxy the environment names
    with session:
        yield session


def files_under(folder) -> list:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def signed_location(response, server, bucket) -> str:
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{server.url}/{bucket}/")
    query = parse_qs(urlsplit(location).query)
    assert {"X-Amz-Signature", "X-Amz-Expires", "X-Amz-Credential"} <= set(query)
    return location


# Storing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
def test_a_job_stores_its_video_and_poster_in_the_bucket_and_nothing_on_disk(
    alice, s3_server, bucket, media_root, response_format
):
    job = stored_job(alice, response_format=response_format)

    assert s3_server.keys(bucket) == sorted([job.video.name, job.poster.name])
    assert job.video.name == f"videos/{job.created_at:%Y/%m}/{job.pk}.mp4"
    assert job.poster.name == f"posters/{job.created_at:%Y/%m}/{job.pk}.jpg"
    assert s3_server.read(bucket, job.video.name)[4:8] == b"ftyp"
    assert s3_server.read(bucket, job.poster.name)[:2] == b"\xff\xd8"  # a JPEG
    assert files_under(media_root) == []


def test_the_bucket_keeps_its_objects_private(alice, s3_server, bucket, browser):
    job = stored_job(alice)

    unsigned = browser.get(f"{s3_server.url}/{bucket}/{job.video.name}")

    assert unsigned.status_code == 403
    grants = s3_server.client.get_object_acl(Bucket=bucket, Key=job.video.name)["Grants"]
    assert all("URI" not in grant["Grantee"] for grant in grants)  # no AllUsers, no AuthUsers


def test_an_uploaded_input_image_lands_in_the_bucket_and_comes_back_as_that_image(
    alice_client, alice, s3_server, bucket, media_root, browser
):
    png = image_bytes("PNG", (64, 36))
    # Declared as HTML by the browser that uploaded it: the studio never serves it as that.
    upload = SimpleUploadedFile("holiday.png", png, content_type="text/html")
    response = alice_client.post(
        reverse("jobs:create"),
        form_data(prompt=PROMPT, size="640x360", seconds="auto", image=upload),
    )
    assert response.status_code == 302
    job = Job.objects.get(owner=alice)
    run_job_now(job.pk)  # the image goes to the simulator from the bucket: image-to-video
    job.refresh_from_db()

    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.input_image.name.startswith("uploads/") and job.input_image.name.endswith(".png")
    assert job.input_image.name in s3_server.keys(bucket)
    assert s3_server.read(bucket, job.input_image.name) == png
    assert files_under(media_root) == []
    image = browser.get(alice_client.get(reverse("jobs:image", args=[job.pk]))["Location"])
    assert image.status_code == 200
    assert image.headers["Content-Type"] == "image/png"
    assert image.content == png


# Serving ---------------------------------------------------------------------------------------


def test_alice_is_redirected_to_a_signed_url_that_answers_range_requests(
    alice_client, alice, s3_server, bucket, browser
):
    job = stored_job(alice)
    stored = s3_server.read(bucket, job.video.name)

    response = alice_client.get(reverse("jobs:video", args=[job.pk]))

    location = signed_location(response, s3_server, bucket)
    assert response["Cache-Control"] == "private, no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == ["60"]
    first = browser.get(location, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206
    assert first.content == stored[:100]
    assert first.headers["Content-Range"] == f"bytes 0-99/{len(stored)}"
    assert first.headers["Content-Type"] == "video/mp4"
    assert "Content-Disposition" not in first.headers


def test_a_download_link_has_the_bucket_name_the_file(
    alice_client, alice, s3_server, bucket, browser
):
    job = stored_job(alice)

    response = alice_client.get(reverse("jobs:video", args=[job.pk]) + "?download")

    download = browser.get(signed_location(response, s3_server, bucket))
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == f'attachment; filename="{job.pk}.mp4"'
    assert download.content == s3_server.read(bucket, job.video.name)


def test_the_poster_comes_from_the_bucket_as_a_jpeg(
    alice_client, alice, s3_server, bucket, browser
):
    job = stored_job(alice)

    response = alice_client.get(reverse("jobs:poster", args=[job.pk]))

    poster = browser.get(signed_location(response, s3_server, bucket))
    assert poster.headers["Content-Type"] == "image/jpeg"
    assert poster.content == s3_server.read(bucket, job.poster.name)


@pytest.mark.parametrize("view", ["jobs:video", "jobs:poster"])
def test_bob_gets_404_and_no_signed_url_for_alices_files(client, alice, bob, bucket, view):
    job = stored_job(alice)
    client.force_login(bob)

    response = client.get(reverse(view, args=[job.pk]))

    assert response.status_code == 404
    assert "Location" not in response
    assert "X-Amz-Signature" not in response.content.decode()


def test_a_signed_url_stops_working_once_it_expires(
    alice_client, alice, s3_server, bucket, settings, browser
):
    job = stored_job(alice)
    # The signature's time is in whole seconds, so a URL signed for 1 s may have almost nothing
    # left when it is used: 3 s leave it at least 2 to work in.
    use_bucket(settings, s3_server, bucket, url_expiry=3)

    location = signed_location(
        alice_client.get(reverse("jobs:video", args=[job.pk])), s3_server, bucket
    )

    assert browser.get(location, headers={"Range": "bytes=0-99"}).status_code == 206
    query = parse_qs(urlsplit(location).query)
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    expires_at = signed_at + timedelta(seconds=int(query["X-Amz-Expires"][0]))
    time.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 1.1)
    expired = browser.get(location, headers={"Range": "bytes=0-99"})
    assert expired.status_code == 403
    assert "Request has expired" in expired.text


def test_a_signed_url_cannot_be_edited_into_a_link_to_another_file(
    alice_client, alice, s3_server, bucket, browser
):
    first, second = stored_job(alice), stored_job(alice)
    location = signed_location(
        alice_client.get(reverse("jobs:video", args=[first.pk])), s3_server, bucket
    )

    edited = browser.get(location.replace(str(first.pk), str(second.pk)))
    as_html = browser.get(location.replace("video%2Fmp4", "text%2Fhtml"))

    assert edited.status_code == 403 and "SignatureDoesNotMatch" in edited.text
    assert as_html.status_code == 403


def test_a_shared_link_redirects_to_the_bucket_and_is_never_cached(
    alice_client, alice, s3_server, bucket, browser
):
    job = stored_job(alice)
    token = services.share_create(job=job)
    stranger = Client()

    response = stranger.get(reverse("shared_video", args=[token]))

    location = signed_location(response, s3_server, bucket)
    assert response["Cache-Control"] == "private, no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    assert browser.get(location).content == s3_server.read(bucket, job.video.name)


# Reading and deleting through the storage API --------------------------------------------------


def test_the_zip_download_reads_the_videos_from_the_bucket(alice_client, alice, s3_server, bucket):
    jobs = [stored_job(alice), stored_job(alice, response_format="b64_json")]

    response = alice_client.post(reverse("jobs:download_selected"), {"job": [j.pk for j in jobs]})

    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    contents = sorted(archive.read(name) for name in archive.namelist())
    assert contents == sorted(s3_server.read(bucket, job.video.name) for job in jobs)


def test_deleting_a_job_removes_its_objects_from_the_bucket(alice, s3_server, bucket):
    kept, deleted = stored_job(alice), stored_job(alice)

    assert services.job_delete(job=deleted)

    assert s3_server.keys(bucket) == sorted([kept.video.name, kept.poster.name])


# Settings --------------------------------------------------------------------------------------


S3_ENV = {"STORAGE_BACKEND": "s3", "S3_BUCKET": "studio-videos"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STORAGE_BACKEND": "s3"}, "Set S3_BUCKET"),
        ({"STORAGE_BACKEND": "ftp"}, "STORAGE_BACKEND must be 'local' or 's3', not 'ftp'"),
        ({**S3_ENV, "MEDIA_X_ACCEL_PREFIX": "/protected/"}, "Unset one of them"),
        ({**S3_ENV, "S3_ACCESS_KEY_ID": "AKIA-only"}, "Set both S3_ACCESS_KEY_ID"),
        ({**S3_ENV, "S3_URL_EXPIRY": "0"}, "S3_URL_EXPIRY must be from 1 to 604800"),
    ],
)
def test_s3_settings_that_cannot_work_refuse_to_start(env, message):
    completed = run_with_settings(**env)

    assert completed.returncode != 0
    assert message in completed.stderr


def test_pages_may_load_videos_and_pictures_from_the_s3_endpoint():
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.STORAGES['default'], s.CONTENT_SECURITY_POLICY['DIRECTIVES']]))"
    )
    completed = run_with_settings(code, **S3_ENV, S3_ENDPOINT_URL="https://media.example.com:9000/")

    assert completed.returncode == 0, completed.stderr
    storage, directives = json.loads(completed.stdout)
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    assert storage["OPTIONS"]["endpoint_url"] == "https://media.example.com:9000"
    assert storage["OPTIONS"]["default_acl"] is None
    assert storage["OPTIONS"]["querystring_expire"] == 300
    assert "https://media.example.com:9000" in directives["media-src"]
    assert "https://media.example.com:9000" in directives["img-src"]
    assert directives["script-src"] == ["'self'"]


@pytest.mark.parametrize(
    ("bucket_name", "endpoint_url", "region"),
    [
        ("studio-videos", "", "eu-west-1"),
        ("studio-videos", "", "us-east-1"),
        ("studio.videos", "", "eu-west-1"),  # a dot: path-style, or TLS would not match
        ("studio-videos", "https://minio.example.com:9000", "us-east-1"),
    ],
)
def test_signed_urls_point_where_the_content_security_policy_allows(
    bucket_name, endpoint_url, region
):
    """Signing needs no network: this is the URL botocore would hand a browser."""
    options = s3_storage(
        bucket=bucket_name, endpoint_url=endpoint_url, region=region,
        access_key=ACCESS_KEY, secret_key=SECRET_KEY, url_expiry=60,
    )["OPTIONS"]  # fmt: skip

    url = urlsplit(S3Storage(**options).url("videos/2026/11/a.mp4"))

    origin = s3_url_origin(bucket=bucket_name, endpoint_url=endpoint_url, region=region)
    assert f"{url.scheme}://{url.netloc}" == origin
    assert url.scheme == "https"
