"""End to end through a real Celery worker on the real Redis, against the simulator."""

import pytest
import redis
from django.urls import reverse

from jobs.models import Job
from tests.factories import KLING, form_data, submit
from tests.helpers import finished, running_worker, wait_for
from tests.media import probe

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_submitted_job_reaches_done_with_a_playable_mp4_and_its_cost(
    worker, simulator, catalog, client, alice
):
    client.force_login(alice)

    response = client.post(
        reverse("jobs:create"),
        form_data(prompt="a hot air balloon over fields", model=KLING, size="1280x720"),
    )
    job_id = Job.objects.get(owner=alice).pk
    assert response.url == reverse("jobs:detail", args=[job_id])

    job = wait_for(lambda: finished(job_id), timeout=60, what="the job to finish")
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.cost > 0 and job.latency_ms is not None
    info = probe(job.video.path)
    assert (info.codec, info.width, info.height) == ("h264", 1280, 720)
    assert info.duration == pytest.approx(5, abs=0.5)
    assert simulator.stats()["paid_calls"] == 1
    # The poster follows from the poster queue's own worker.
    job = wait_for(lambda: Job.objects.exclude(poster="").filter(pk=job_id).first(), timeout=30,
                   what="the poster")  # fmt: skip
    assert job.poster.read(3) == b"\xff\xd8\xff"  # a JPEG


def test_a_rate_limited_job_waits_then_succeeds_through_the_worker(
    worker, simulator, catalog, alice
):
    simulator.inject({"kind": "rate_limit", "retry_after": 1})
    job = submit(alice, "patience", response_format="b64_json")

    job = wait_for(lambda: finished(job.pk), timeout=60, what="the retried job to finish")
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.attempt == 2
    assert simulator.stats()["paid_calls"] == 1


def test_generation_and_storing_run_on_their_own_queues(
    broker_url, transactional_db, simulator, catalog, alice
):
    """A generation worker with no store worker beside it still makes every paid call: storing
    waits on its own queue, and a store worker picks it up later without calling the API."""
    redis.Redis.from_url(broker_url).flushdb()
    jobs = [submit(alice, f"queue {n}") for n in range(3)]

    with running_worker(broker_url, queues=["generate"]):
        wait_for(
            lambda: Job.objects.filter(status=Job.Status.STORING).count() == 3,
            timeout=30,
            what="every job to be generated while no store worker runs",
        )
    assert redis.Redis.from_url(broker_url).llen("store") == 3
    assert simulator.stats()["paid_calls"] == 3

    with running_worker(broker_url, queues=["store"]):
        for job in jobs:
            done = wait_for(lambda job=job: finished(job.pk), timeout=30, what="the store")
            assert done.status == Job.Status.SUCCEEDED and done.video
    assert simulator.stats()["paid_calls"] == 3
    # Posters wait on a queue of their own: the videos are ready without them.
    assert redis.Redis.from_url(broker_url).llen("poster") == 3
    assert not Job.objects.exclude(poster="").exists()

    with running_worker(broker_url, queues=["poster"]):
        wait_for(
            lambda: Job.objects.exclude(poster="").count() == 3,
            timeout=30,
            what="the poster worker to make every poster",
        )
