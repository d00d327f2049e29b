"""Share links: opt-in, owner-only, revocable at once, and they show nothing else of the owner's."""

import pytest
from django.test import Client
from django.urls import reverse

from jobs import services
from jobs.models import Job
from tests.factories import stored_job

# broker_url: a URL result sends its store task, which must go to the tests' Redis database.
pytestmark = pytest.mark.usefixtures("catalog", "broker_url")

PROMPT = "a paper lantern drifting over a lake"


@pytest.fixture
def finished(alice):
    return stored_job(alice, PROMPT)


@pytest.fixture
def stranger():
    """A visitor of their own, not signed in (the `client` fixture is alice's here)."""
    return Client()


def share(client, job) -> str:
    response = client.post(reverse("jobs:share", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.share_token
    return job.share_token


def finished_url(job) -> str:
    return reverse("jobs:detail", args=[job.pk])


def shared_urls(token: str) -> list[str]:
    return [reverse(name, args=[token]) for name in ("shared", "shared_video", "shared_poster")]


def test_a_shared_link_works_for_anyone_without_signing_in(alice_client, stranger, finished):
    token = share(alice_client, finished)

    page = stranger.get(reverse("shared", args=[token]))
    assert page.status_code == 200
    html = page.content.decode()
    assert PROMPT in html and "ir/test-video" in html
    assert f'src="/s/{token}/video/"' in html and f'poster="/s/{token}/poster/"' in html

    video = stranger.get(reverse("shared_video", args=[token]), HTTP_RANGE="bytes=0-1")
    assert video.status_code == 206
    assert video["Content-Type"] == "video/mp4"
    assert video["Content-Range"].startswith("bytes 0-1/")
    assert b"".join(video.streaming_content) == finished.video.open("rb").read(2)

    poster = stranger.get(reverse("shared_poster", args=[token]))
    assert poster.status_code == 200 and poster["Content-Type"] == "image/jpeg"
    assert b"".join(poster.streaming_content)[:3] == b"\xff\xd8\xff"


def test_the_shared_page_shows_nothing_else_of_the_owners(alice_client, stranger, alice, finished):
    Job.objects.create(owner=alice, prompt="alice's other, private video", model="ir/test-video")
    Job.objects.filter(pk=finished.pk).update(provider_url="https://provider.example/v/secret.mp4")
    token = share(alice_client, finished)

    html = stranger.get(reverse("shared", args=[token])).content.decode()

    assert "alice" not in html.lower()  # no username, and none of her other jobs
    assert "Cost:" not in html and "free" not in html and "$" not in html
    assert str(finished.pk) not in html  # no link into the owner's own pages
    assert "provider.example" not in html
    assert "Download" not in html


def test_shared_answers_send_no_referrer_are_not_indexed_and_are_not_cached_publicly(
    alice_client, stranger, finished
):
    token = share(alice_client, finished)

    for url in shared_urls(token):
        response = stranger.get(url)
        assert response.status_code == 200, url
        assert response["Referrer-Policy"] == "no-referrer", url
        assert "noindex" in response["X-Robots-Tag"], url
        assert response["Cache-Control"].startswith("private"), url


def test_stopping_sharing_kills_the_page_video_and_poster_at_once(alice_client, stranger, finished):
    token = share(alice_client, finished)

    response = alice_client.post(reverse("jobs:unshare", args=[finished.pk]), follow=True)
    assert "Stopped sharing" in response.content.decode()

    finished.refresh_from_db()
    assert finished.share_token is None
    for url in shared_urls(token):
        assert stranger.get(url).status_code == 404, url


def test_sharing_again_makes_a_new_link_and_the_old_one_stays_dead(
    alice_client, stranger, finished
):
    old = share(alice_client, finished)
    alice_client.post(reverse("jobs:unshare", args=[finished.pk]))

    new = share(alice_client, finished)

    assert new != old
    assert stranger.get(reverse("shared", args=[new])).status_code == 200
    for url in shared_urls(old):
        assert stranger.get(url).status_code == 404, url


def test_a_second_click_on_share_keeps_the_link_already_given_out(alice_client, finished):
    first = share(alice_client, finished)
    assert share(alice_client, finished) == first


def test_bob_cannot_share_or_stop_sharing_alices_job(alice_client, bob, finished):
    client = Client()
    client.force_login(bob)
    assert client.post(reverse("jobs:share", args=[finished.pk])).status_code == 404
    finished.refresh_from_db()
    assert finished.share_token is None

    token = share(alice_client, finished)
    assert client.post(reverse("jobs:unshare", args=[finished.pk])).status_code == 404
    finished.refresh_from_db()
    assert finished.share_token == token


def test_staff_cannot_share_someone_elses_job(django_user_model, finished):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", password="root-pw-1"))

    assert client.post(reverse("jobs:share", args=[finished.pk])).status_code == 404
    assert "Create a share link" not in client.get(finished_url(finished)).content.decode()


@pytest.mark.parametrize("status", [Job.Status.QUEUED, Job.Status.RUNNING, Job.Status.FAILED])
def test_a_job_that_is_not_a_finished_video_cannot_be_shared(alice_client, alice, status):
    job = Job.objects.create(owner=alice, prompt=PROMPT, model="ir/test-video", status=status)

    response = alice_client.post(reverse("jobs:share", args=[job.pk]), follow=True)

    assert "Only a finished video can be shared." in response.content.decode()
    job.refresh_from_db()
    assert job.share_token is None
    assert "Create a share link" not in alice_client.get(finished_url(job)).content.decode()


def test_deleting_a_shared_job_kills_its_link(alice_client, stranger, finished):
    token = share(alice_client, finished)

    alice_client.post(reverse("jobs:delete", args=[finished.pk]))

    finished.refresh_from_db()
    assert finished.deleted_at is not None and finished.share_token is None
    for url in shared_urls(token):
        assert stranger.get(url).status_code == 404, url


def test_an_unknown_token_is_404(stranger, finished):
    for url in shared_urls("not-a-token-anyone-was-given"):
        assert stranger.get(url).status_code == 404, url


def test_the_owner_sees_the_full_link_with_its_label_note_and_stop_button(alice_client, finished):
    page = alice_client.get(finished_url(finished)).content.decode()
    assert "Create a share link" in page and 'for="share-link"' not in page

    token = share(alice_client, finished)
    page = alice_client.get(finished_url(finished)).content.decode()

    assert '<label for="share-link">Share link</label>' in page
    assert f'readonly value="http://testserver/s/{token}/"' in page
    assert "Anyone with this link can watch the video" in page
    assert "Stop sharing" in page


def test_the_finished_status_fragment_carries_the_share_controls(alice_client, finished):
    """The page swaps in the status fragment when the job ends; sharing must be there too."""
    response = alice_client.get(reverse("jobs:status", args=[finished.pk]))

    assert "Create a share link" in response.content.decode()


def test_the_services_refuse_a_deleted_job(alice, finished):
    services.job_delete(job=finished)

    with pytest.raises(services.NotShareableError):
        services.share_create(job=finished)
