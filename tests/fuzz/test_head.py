"""HEAD on a video or an image answers as GET does, without the body: players and proxies ask
it first to learn the type and the length."""

import pytest
from django.test import Client
from django.urls import reverse

from jobs import services
from tests.fuzz.conftest import VIDEO

COMPARED = ("Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "Cache-Control")


def assert_head_answers_like_get(client, url, headers=None):
    got = client.get(url, headers=headers or {})
    head = client.head(url, headers=headers or {})

    assert head.status_code == got.status_code
    for name in COMPARED:
        assert head.get(name) == got.get(name), name
    assert b"".join(head.streaming_content if head.streaming else [head.content]) == b""
    return head


@pytest.mark.parametrize(
    "range_header", [None, "bytes=0-1", "bytes=100-", "bytes=-10", "bytes=5000-"]
)
def test_head_on_a_video_answers_like_get_without_the_body(alice_client, alices_job, range_header):
    url = reverse("jobs:video", args=[alices_job.pk])
    headers = {"Range": range_header} if range_header else None

    head = assert_head_answers_like_get(alice_client, url, headers)

    if range_header is None:
        assert head.status_code == 200 and head["Content-Length"] == str(len(VIDEO))


def test_head_on_a_poster_answers_like_get(alice_client, alices_job):
    assert_head_answers_like_get(alice_client, reverse("jobs:poster", args=[alices_job.pk]))


def test_head_on_someone_elses_video_is_404(client, bob, alices_job):
    client.force_login(bob)

    assert client.head(reverse("jobs:video", args=[alices_job.pk])).status_code == 404


def test_head_on_a_shared_video_answers_like_get(alices_job):
    services.share_create(job=alices_job)
    alices_job.refresh_from_db()
    stranger = Client()
    for name in ("shared", "shared_video", "shared_poster"):
        url = reverse(name, args=[alices_job.share_token])
        head = assert_head_answers_like_get(stranger, url)
        assert head.status_code == 200
        assert head["Referrer-Policy"] == "no-referrer"


def test_head_on_the_apis_content_answers_like_get(client, alice_key, alices_job):
    auth = {"Authorization": f"Bearer {alice_key}"}
    url = f"/v1/jobs/{alices_job.pk}/content"

    head = assert_head_answers_like_get(client, url, auth)

    assert head.status_code == 200 and head["Content-Length"] == str(len(VIDEO))
    assert_head_answers_like_get(client, url, {**auth, "Range": "bytes=0-1"})
