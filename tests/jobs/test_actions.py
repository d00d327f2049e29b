"""What a person does with a job after submitting it: cancel, retry, delete; and the admin notice
that an out-of-credit provider account raises."""

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from jobs import services
from jobs.models import Job, Notice, VideoModel
from jobs.templatetags.studio import usd
from tests.factories import KLING, new_job, submit
from tests.helpers import run_job_now, visible_text
from tests.media import image_bytes

pytestmark = pytest.mark.usefixtures("catalog", "broker_url")

PRICED_MODEL = KLING  # calculated price, $0.18 to $0.50


def png_upload(name="garden.png"):
    return SimpleUploadedFile(name, image_bytes("PNG", (80, 60)), content_type="image/png")


@pytest.fixture
def queued_job(alice):
    return new_job(alice, "a cat on a skateboard")


@pytest.fixture
def refused_job(alice):
    return Job.objects.create(
        owner=alice,
        prompt="a forbidden prompt",
        model="ir/test-video",
        status=Job.Status.FAILED,
        cost=0,
        error="ImageRouter refused this request: prompt rejected. Nothing was charged.",
    )


@pytest.fixture
def unknown_outcome_job(alice, simulator):
    """A priced job with an input image whose connection dropped mid-generation."""
    simulator.inject({"kind": "drop", "after_seconds": 0.2})
    job = submit(
        alice, "a heron lands on a pier", model=PRICED_MODEL, seconds="5", image=png_upload()
    )
    run_job_now(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.outcome_unknown, job.error
    return job


# --- Cancel -----------------------------------------------------------------------------------


def test_the_owner_cancels_a_queued_job_and_it_never_reaches_the_provider(
    alice_client, queued_job, simulator
):
    response = alice_client.post(reverse("jobs:cancel", args=[queued_job.pk]), follow=True)

    queued_job.refresh_from_db()
    assert response.redirect_chain[-1][0] == reverse("jobs:detail", args=[queued_job.pk])
    assert queued_job.status == Job.Status.CANCELED
    assert queued_job.cost == 0 and queued_job.finished_at is not None
    assert "Canceled. Nothing was charged." in visible_text(response)

    services.job_run(job_id=queued_job.pk)  # the message was already on its way

    queued_job.refresh_from_db()
    assert queued_job.status == Job.Status.CANCELED
    assert simulator.stats()["generation_requests"] == 0


def test_cancel_after_a_worker_claimed_the_job_is_refused_and_it_keeps_running(
    alice_client, queued_job
):
    Job.objects.filter(pk=queued_job.pk).update(status=Job.Status.RUNNING)

    response = alice_client.post(reverse("jobs:cancel", args=[queued_job.pk]), follow=True)

    queued_job.refresh_from_db()
    assert queued_job.status == Job.Status.RUNNING
    assert "Too late to cancel" in visible_text(response)


def test_the_queued_fragment_offers_a_cancel_button(alice_client, queued_job):
    html = alice_client.get(reverse("jobs:status", args=[queued_job.pk])).content.decode()

    assert f'action="{reverse("jobs:cancel", args=[queued_job.pk])}"' in html
    assert ">Cancel</button>" in html


def test_the_running_fragment_says_it_cannot_be_stopped_and_offers_no_cancel(
    alice_client, queued_job
):
    Job.objects.filter(pk=queued_job.pk).update(status=Job.Status.RUNNING)

    response = alice_client.get(reverse("jobs:status", args=[queued_job.pk]))

    assert "cannot be stopped at the provider" in visible_text(response)
    assert reverse("jobs:cancel", args=[queued_job.pk]) not in response.content.decode()


def test_cancel_only_accepts_post(alice_client, queued_job):
    response = alice_client.get(reverse("jobs:cancel", args=[queued_job.pk]))

    queued_job.refresh_from_db()
    assert response.status_code == 405
    assert queued_job.status == Job.Status.QUEUED


# --- Retry ------------------------------------------------------------------------------------


def test_retry_of_a_refused_job_says_the_failed_try_was_not_charged(alice_client, refused_job):
    response = alice_client.get(reverse("jobs:retry", args=[refused_job.pk]))

    text = visible_text(response)
    assert response.status_code == 200
    assert "Retry this video?" in text
    assert "The failed try was not charged." in text
    assert "may have been charged" not in text


def test_an_unknown_outcome_records_the_models_top_price_as_its_possible_cost(
    alice_client, unknown_outcome_job
):
    top_price = VideoModel.objects.get(pk=PRICED_MODEL).price_max

    response = alice_client.get(reverse("jobs:status", args=[unknown_outcome_job.pk]))

    assert unknown_outcome_job.possible_cost == top_price
    assert usd(top_price) == "$0.50"
    assert unknown_outcome_job.cost is None  # not known, so not counted as spent
    text = visible_text(response)
    assert "This may have been charged up to $0.50." in text
    assert "Retry…" in text and "Delete…" in text


def test_retry_of_an_unknown_outcome_warns_it_may_have_been_charged(
    alice_client, unknown_outcome_job
):
    response = alice_client.get(reverse("jobs:retry", args=[unknown_outcome_job.pk]))

    text = visible_text(response)
    assert "The failed try may have been charged (up to $0.50)" in text
    assert "Retrying could mean paying twice." in text


def test_retry_creates_a_new_queued_job_with_the_same_request_and_a_copy_of_the_image(
    alice_client, alice, unknown_outcome_job, django_capture_on_commit_callbacks
):
    failed = unknown_outcome_job
    before = Job.objects.values().get(pk=failed.pk)

    with django_capture_on_commit_callbacks() as callbacks:
        response = alice_client.post(reverse("jobs:retry", args=[failed.pk]))

    retry = Job.objects.exclude(pk=failed.pk).get(owner=alice)
    assert response.status_code == 302
    assert response.url == reverse("jobs:detail", args=[retry.pk])
    assert len(callbacks) == 1  # the new job is sent to a worker once it is committed
    assert retry.status == Job.Status.QUEUED
    request_fields = ("prompt", "model", "size", "seconds", "response_format")
    assert [getattr(retry, f) for f in request_fields] == [
        getattr(failed, f) for f in request_fields
    ]
    assert retry.input_image.name != failed.input_image.name
    assert default_storage.exists(retry.input_image.name)
    with retry.input_image.open("rb") as copy, failed.input_image.open("rb") as original:
        assert copy.read() == original.read()
    assert Job.objects.values().get(pk=failed.pk) == before
    assert default_storage.exists(failed.input_image.name)


def test_retry_of_a_job_without_an_image_makes_one_without_an_image(alice_client, refused_job):
    response = alice_client.post(reverse("jobs:retry", args=[refused_job.pk]))

    retry = Job.objects.exclude(pk=refused_job.pk).get()
    assert response.url == reverse("jobs:detail", args=[retry.pk])
    assert (retry.prompt, retry.status, retry.input_image.name) == (
        "a forbidden prompt",
        Job.Status.QUEUED,
        "",
    )


def test_a_succeeded_job_cannot_be_retried(alice_client, alice, simulator):
    job = submit(alice)
    run_job_now(job.pk)

    page = alice_client.get(reverse("jobs:retry", args=[job.pk]), follow=True)
    posted = alice_client.post(reverse("jobs:retry", args=[job.pk]), follow=True)

    assert Job.objects.count() == 1
    for response in (page, posted):
        assert response.redirect_chain[-1][0] == reverse("jobs:detail", args=[job.pk])
        assert "Only a failed job can be retried." in visible_text(response)


# --- Delete -----------------------------------------------------------------------------------


@pytest.fixture
def finished_priced_job(alice, simulator):
    """A priced job with an input image, generated and stored for real."""
    job = submit(alice, "a lighthouse at dusk", model=PRICED_MODEL, seconds="5", image=png_upload())
    run_job_now(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.cost > 0
    return job


def test_delete_asks_for_confirmation_first(alice_client, finished_priced_job):
    response = alice_client.get(reverse("jobs:delete", args=[finished_priced_job.pk]))

    finished_priced_job.refresh_from_db()
    assert response.status_code == 200
    assert "Delete this video?" in visible_text(response)
    assert finished_priced_job.deleted_at is None
    assert default_storage.exists(finished_priced_job.video.name)


def test_deleting_a_finished_job_removes_its_files_and_prompt_but_keeps_its_cost(
    alice_client, finished_priced_job
):
    job = finished_priced_job
    video_name, image_name = job.video.name, job.input_image.name
    assert default_storage.exists(video_name) and default_storage.exists(image_name)

    response = alice_client.post(reverse("jobs:delete", args=[job.pk]), follow=True)

    assert response.redirect_chain[-1][0] == reverse("jobs:list")
    assert "Its cost stays on record." in visible_text(response)
    assert not default_storage.exists(video_name)
    assert not default_storage.exists(image_name)
    job.refresh_from_db()
    assert job.deleted_at is not None
    assert (job.prompt, job.video.name, job.input_image.name) == ("", "", "")

    my_videos = alice_client.get(reverse("jobs:list"))
    assert reverse("jobs:detail", args=[job.pk]) not in my_videos.content.decode()
    assert "a lighthouse at dusk" not in my_videos.content.decode()
    assert f"Total spend: {usd(job.cost)}" in visible_text(my_videos)
    assert alice_client.get(reverse("jobs:detail", args=[job.pk])).status_code == 404


def test_deleting_a_queued_job_is_refused(alice_client, queued_job):
    response = alice_client.post(reverse("jobs:delete", args=[queued_job.pk]), follow=True)

    queued_job.refresh_from_db()
    assert response.redirect_chain[-1][0] == reverse("jobs:detail", args=[queued_job.pk])
    assert "A job can be deleted once it has finished." in visible_text(response)
    assert queued_job.deleted_at is None
    assert queued_job.prompt == "a cat on a skateboard"


# --- Someone else's job -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "action", "status"),
    [
        ("post", "jobs:cancel", Job.Status.QUEUED),
        ("get", "jobs:retry", Job.Status.FAILED),
        ("post", "jobs:retry", Job.Status.FAILED),
        ("get", "jobs:delete", Job.Status.FAILED),
        ("post", "jobs:delete", Job.Status.FAILED),
    ],
)
def test_bob_gets_404_on_actions_on_alices_job_and_nothing_changes(
    client, alice, bob, method, action, status
):
    job = Job.objects.create(owner=alice, prompt="alice's", model="ir/test-video", status=status)
    before = Job.objects.values().get(pk=job.pk)
    client.force_login(bob)

    response = getattr(client, method)(reverse(action, args=[job.pk]))

    assert response.status_code == 404
    assert list(Job.objects.values()) == [before]


# --- Out of credit ----------------------------------------------------------------------------


def test_an_out_of_credit_provider_fails_the_job_free_and_raises_one_admin_notice(alice, simulator):
    simulator.inject(
        {"kind": "insufficient_credits", "status": 500},
        {"kind": "insufficient_credits", "status": 500},
    )
    first, second = submit(alice), submit(alice)

    services.job_run(job_id=first.pk)
    services.job_run(job_id=second.pk)

    for job in (first, second):
        job.refresh_from_db()
        assert job.status == Job.Status.FAILED
        assert job.cost == 0 and not job.outcome_unknown
        assert "out of credit" in job.error
    notice = Notice.objects.get(resolved_at__isnull=True)
    assert notice.kind == Notice.Kind.INSUFFICIENT_CREDITS
    assert notice.job_id == first.pk


def test_staff_see_the_open_notice_in_the_header_and_others_do_not(
    admin_client, alice_client, alice, simulator
):
    simulator.inject({"kind": "insufficient_credits", "status": 500})
    services.job_run(job_id=submit(alice).pk)

    staff_page = admin_client.get(reverse("jobs:create"))
    person_page = alice_client.get(reverse("jobs:create"))

    assert "1 notice for admins" in visible_text(staff_page)
    assert "notice for admins" not in visible_text(person_page)


def test_cancelling_a_finished_job_says_it_has_already_finished(alice_client, alice):
    job = Job.objects.create(owner=alice, model="ir/test-video", status=Job.Status.SUCCEEDED)

    response = alice_client.post(reverse("jobs:cancel", args=[job.pk]), follow=True)

    html = response.content.decode()
    assert "already finished" in html and "Too late to cancel" not in html


def test_staff_can_look_at_a_job_but_not_spend_or_delete_in_its_owners_name(admin_client, alice):
    job = Job.objects.create(
        owner=alice, model="ir/test-video", prompt="alice's", status=Job.Status.FAILED
    )

    assert admin_client.get(reverse("jobs:detail", args=[job.pk])).status_code == 200
    assert admin_client.post(reverse("jobs:retry", args=[job.pk])).status_code == 404
    assert admin_client.post(reverse("jobs:delete", args=[job.pk])).status_code == 404
    assert Job.objects.count() == 1 and Job.objects.get(pk=job.pk).prompt == "alice's"
