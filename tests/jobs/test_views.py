"""The pages: sign-up, the generate form, the job page and its polling contract, isolation."""

import pytest
from django.urls import reverse

from jobs.models import Job
from tests.factories import form_data, new_job
from tests.helpers import poll_url, run_job_now

pytestmark = pytest.mark.usefixtures("catalog")


@pytest.fixture
def alices_job(alice):
    return new_job(alice, "a cat on a skateboard")


def test_a_visitor_can_sign_up_and_is_then_signed_in(client, db):
    response = client.post(
        reverse("signup"),
        {
            "username": "carol",
            "password1": "a-long-passphrase-9",
            "password2": "a-long-passphrase-9",
        },
        follow=True,
    )

    assert response.redirect_chain[-1][0] == reverse("jobs:create")
    assert "Signed in as <strong>carol</strong>" in response.content.decode()


def test_pages_need_a_login(client, db):
    response = client.get(reverse("jobs:create"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_every_page_shows_the_simulator_badge_in_simulator_mode(alice_client, settings):
    settings.SIMULATOR_MODE = True
    assert ">simulator</span>" in alice_client.get(reverse("jobs:create")).content.decode()


def test_the_form_fields_carry_real_labels(alice_client):
    html = alice_client.get(reverse("jobs:create")).content.decode()
    for field in ("prompt", "model", "size", "seconds", "image"):
        assert f'<label for="id_{field}">' in html
    assert "b64_ephemeral" in html and "keeps no copy" in html


def test_a_valid_submit_creates_a_queued_job_and_lands_on_its_page(alice_client, alice):
    response = alice_client.post(
        reverse("jobs:create"),
        form_data(prompt="sunrise over mountains", response_format="b64_ephemeral"),
    )

    job = Job.objects.get(owner=alice)
    assert response.status_code == 302
    assert response.url == reverse("jobs:detail", args=[job.pk])
    assert (job.status, job.seconds, job.response_format) == ("queued", "5", "b64_ephemeral")


def test_an_invalid_submit_reshows_the_form_and_creates_nothing(alice_client):
    response = alice_client.post(
        reverse("jobs:create"),
        {"prompt": "", "model": "ir/test-video", "size": "huge", "seconds": "auto"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "Describe the video you want." in html
    assert "such as 1280x720" in html
    assert not Job.objects.exists()


def test_a_live_job_fragment_keeps_polling(alice_client, alices_job):
    response = alice_client.get(reverse("jobs:status", args=[alices_job.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'hx-trigger="every 2s' in html
    assert "<html" not in html  # a fragment, not a page
    assert "Queued" in html


def test_the_page_polls_with_its_version_and_an_unchanged_job_answers_204(alice_client, alices_job):
    html = alice_client.get(reverse("jobs:detail", args=[alices_job.pk])).content.decode()
    url = poll_url(html)
    assert url.startswith(reverse("jobs:status", args=[alices_job.pk]) + "?v=queued.0&p=")

    response = alice_client.get(url)

    assert response.status_code == 204 and response.content == b""  # htmx keeps the fragment


def test_a_finished_job_fragment_stops_polling_and_shows_the_player(alice_client, alice, simulator):
    job = Job.objects.create(owner=alice, prompt="done soon", model="ir/test-video")
    run_job_now(job.pk)

    response = alice_client.get(reverse("jobs:status", args=[job.pk]))

    html = response.content.decode()
    assert response.status_code == 286
    assert "hx-trigger" not in html
    assert "<video controls" in html and "Download" in html and "free" in html


def test_a_failed_job_fragment_says_why(alice_client, alice):
    job = Job.objects.create(
        owner=alice,
        model="ir/test-video",
        status=Job.Status.FAILED,
        error="ImageRouter refused this request: prompt rejected. Nothing was charged.",
    )

    response = alice_client.get(reverse("jobs:status", args=[job.pk]))

    assert response.status_code == 286
    assert "prompt rejected" in response.content.decode()


def test_the_job_page_embeds_the_same_fragment(alice_client, alices_job):
    html = alice_client.get(reverse("jobs:detail", args=[alices_job.pk])).content.decode()
    assert 'id="job-status"' in html and "a cat on a skateboard" in html


def test_my_videos_lists_my_jobs_newest_first_with_total_spend(alice_client, alice, bob):
    Job.objects.create(owner=alice, prompt="older", model="ir/test-video", cost="0.25")
    Job.objects.create(owner=alice, prompt="newer", model="ir/test-video", cost="0.50")
    Job.objects.create(owner=bob, prompt="bobs secret", model="ir/test-video", cost="9")

    html = alice_client.get(reverse("jobs:list")).content.decode()

    assert html.index(">newer</a>") < html.index(">older</a>")  # the cards' titles
    assert "bobs secret" not in html
    assert "$0.75" in html


@pytest.mark.parametrize("name", ["jobs:detail", "jobs:status", "jobs:video"])
def test_bob_gets_404_on_alices_job(client, bob, alices_job, name):
    client.force_login(bob)
    assert client.get(reverse(name, args=[alices_job.pk])).status_code == 404


def test_the_video_is_served_to_its_owner_with_ranges(alice_client, alice, simulator):
    job = Job.objects.create(owner=alice, prompt="ranged", model="ir/test-video")
    run_job_now(job.pk)
    size = Job.objects.get(pk=job.pk).video.size

    whole = alice_client.get(reverse("jobs:video", args=[job.pk]))
    first_two = alice_client.get(reverse("jobs:video", args=[job.pk]), HTTP_RANGE="bytes=0-1")

    assert whole.status_code == 200 and whole["Content-Type"] == "video/mp4"
    assert int(whole["Content-Length"]) == size
    assert first_two.status_code == 206
    assert first_two["Content-Range"] == f"bytes 0-1/{size}"
    assert len(b"".join(first_two.streaming_content)) == 2


def test_a_person_can_log_in_and_out(client, alice):
    logged_in = client.post(
        reverse("login"), {"username": "alice", "password": "alice-password-1"}, follow=True
    )
    assert "Signed in as <strong>alice</strong>" in logged_in.content.decode()

    logged_out = client.post(reverse("logout"), follow=True)
    assert "Signed in as" not in logged_out.content.decode()
    assert client.get(reverse("jobs:list")).status_code == 302


def test_a_wrong_password_is_refused_with_a_message(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert "Please enter a correct username and password" in response.content.decode()


def test_staff_see_every_job_in_the_admin_and_can_search_and_filter(admin_client, alice, bob):
    Job.objects.create(owner=alice, prompt="alpine lake", model="ir/test-video")
    Job.objects.create(owner=bob, prompt="desert road", model="openai/sora-2", status="failed")
    changelist = reverse("admin:jobs_job_changelist")

    everything = admin_client.get(changelist).content.decode()
    by_prompt = admin_client.get(changelist, {"q": "alpine"}).content.decode()
    by_user = admin_client.get(changelist, {"q": "bob"}).content.decode()
    failed = admin_client.get(changelist, {"status__exact": "failed"}).content.decode()

    assert "alice" in everything and "bob" in everything
    assert "1 result" in by_prompt and "alice" in by_prompt
    assert "1 result" in by_user and "openai/sora-2" in by_user
    assert "1 result" in failed and "bob" in failed


def test_a_normal_user_cannot_open_the_admin(alice_client):
    response = alice_client.get(reverse("admin:jobs_job_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response.url


def test_my_videos_says_free_or_maybe_charged_for_each_job(alice_client, alice):
    Job.objects.create(owner=alice, prompt="gratis", model="ir/test-video", cost="0")
    Job.objects.create(
        owner=alice,
        prompt="unclear",
        model="kling/kling-2.1-standard",
        status="failed",
        outcome_unknown=True,
        possible_cost="0.5",
    )

    html = alice_client.get(reverse("jobs:list")).content.decode()

    assert "free" in html
    assert "may have been charged up to $0.50" in html
