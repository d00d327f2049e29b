"""Creating and running jobs: the service layer against the simulator over a real socket."""

import socket
from decimal import Decimal

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs import services
from jobs.models import CostEntry, Job
from tests.factories import KLING, new_job, submit
from tests.helpers import run_job_now
from tests.media import image_bytes

pytestmark = pytest.mark.usefixtures("catalog", "broker_url")


def queued_messages(broker_url) -> int:
    return redis.Redis.from_url(broker_url).llen("generate")


def test_job_create_enqueues_only_after_commit(
    alice, broker_url, django_capture_on_commit_callbacks
):
    before = queued_messages(broker_url)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = submit(alice, "x")
        assert queued_messages(broker_url) == before  # nothing sent inside the transaction

    assert job.status == Job.Status.QUEUED
    assert len(callbacks) == 1
    callbacks[0]()
    assert queued_messages(broker_url) == before + 1


@pytest.mark.parametrize("response_format", ["url", "b64_json", "b64_ephemeral"])
def test_a_job_runs_to_a_stored_video_with_its_cost(alice, simulator, response_format):
    job = new_job(alice, response_format=response_format)

    run_job_now(job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.attempt == 1
    assert job.cost == 0 and job.latency_ms is not None
    assert job.started_at <= job.finished_at
    with job.video.open("rb") as video:
        assert video.read(12)[4:8] == b"ftyp"


def test_a_job_with_an_uploaded_image_runs(alice, simulator):
    image = SimpleUploadedFile("garden.png", image_bytes("PNG", (80, 60)), content_type="image/png")
    job = submit(alice, "zoom in", response_format="b64_json", image=image)

    services.job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.input_image.name.endswith(".png")


def test_a_priced_job_records_the_providers_cost(alice, simulator):
    job = new_job(alice, model=KLING, seconds="5")

    run_job_now(job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.cost > 0
    assert job.cost == Decimal(simulator.stats()["charged_usd"])


def test_a_refused_request_fails_with_the_providers_message_and_costs_nothing(alice, simulator):
    job = new_job(alice, model="no/such-model")

    services.job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "no/such-model" in job.error
    assert job.cost == 0 and not job.outcome_unknown


def test_a_second_run_of_the_same_job_makes_no_second_call(alice, simulator):
    job = new_job(alice)

    services.job_run(job_id=job.pk)
    services.job_run(job_id=job.pk)

    assert simulator.stats()["generation_requests"] == 1


def test_a_dropped_connection_fails_the_job_as_maybe_charged(alice, simulator):
    simulator.inject({"kind": "drop", "after_seconds": 0.2})
    job = new_job(alice)

    services.job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.outcome_unknown
    assert "may have charged" in job.error


def test_a_rate_limited_job_goes_back_to_the_queue_to_wait(alice, simulator):
    simulator.inject({"kind": "rate_limit", "retry_after": 30})
    job = new_job(alice)

    services.job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED
    assert job.not_before is not None
    assert (job.not_before - job.started_at).total_seconds() >= 29
    services.job_run(job_id=job.pk)  # too early: the job is still waiting
    assert simulator.stats()["generation_requests"] == 1


def test_the_catalog_keeps_video_models_only(simulator, db):
    from jobs.models import VideoModel

    services.catalog_sync()

    ids = set(VideoModel.objects.values_list("id", flat=True))
    assert "ir/test-video" in ids
    assert "openai/gpt-image-1" not in ids
    assert VideoModel.objects.get(id="kling/kling-2.1-standard").price_max > 0


def test_a_job_the_provider_never_took_is_in_the_ledger_as_not_processed_not_refunded(
    alice, settings
):
    """Connection refused on every try: nothing was charged, and nothing was refunded either,
    so the ledger says the provider never took it."""
    with socket.socket() as probe:  # a local port nothing listens on: refused at once, for real
        probe.bind(("127.0.0.1", 0))
        settings.IMAGEROUTER_BASE_URL = f"http://127.0.0.1:{probe.getsockname()[1]}"
    job = new_job(alice, attempt=services.running.MAX_ATTEMPTS - 1)

    services.job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "connection refused" in job.error and "nothing was charged" in job.error
    entry = CostEntry.objects.get(job=job)
    assert (entry.outcome, entry.cost) == (CostEntry.Outcome.NOT_PROCESSED, 0)
    assert entry.get_outcome_display() == "never reached the provider (not charged)"
