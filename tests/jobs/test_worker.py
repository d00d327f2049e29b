"""End to end through a real Celery worker on the real Redis, against the simulator."""

import pytest
from django.urls import reverse

from jobs.models import Job
from tests.helpers import wait_for
from tests.media import probe

pytestmark = pytest.mark.django_db(transaction=True)


def finished(job_id):
    job = Job.objects.get(pk=job_id)
    return job if job.is_terminal else None


def test_a_submitted_job_reaches_done_with_a_playable_mp4_and_its_cost(
    worker, simulator, catalog, client, alice
):
    client.force_login(alice)

    response = client.post(
        reverse("jobs:create"),
        {
            "prompt": "a hot air balloon over fields",
            "model": "kling/kling-2.1-standard",
            "size": "1280x720",
            "seconds": "5",
            "response_format": "url",
        },
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


def test_a_rate_limited_job_waits_then_succeeds_through_the_worker(
    worker, simulator, catalog, alice
):
    from jobs import services

    simulator.inject({"kind": "rate_limit", "retry_after": 1})
    job = services.job_create(
        owner=alice,
        prompt="patience",
        model="ir/test-video",
        size="auto",
        seconds="auto",
        response_format="b64_json",
    )

    job = wait_for(lambda: finished(job.pk), timeout=60, what="the retried job to finish")
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.attempt == 2
    assert simulator.stats()["paid_calls"] == 1
