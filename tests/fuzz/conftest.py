"""Fixtures for the hostile-input tests: a job of alice's with a video, to aim inputs at (the
API's tokens and `api` client come from tests/conftest.py)."""

import pytest
from django.core.files.base import ContentFile

from jobs.models import Job

VIDEO = bytes(range(250)) * 4


@pytest.fixture
def alices_job(alice):
    """A finished job with a video and a poster, so every file view has something to serve."""
    job = Job.objects.create(
        owner=alice, prompt="a heron lands", model="ir/test-video", status=Job.Status.SUCCEEDED
    )
    job.video.save("clip.mp4", ContentFile(VIDEO))
    job.poster.save("poster.jpg", ContentFile(b"\xff\xd8\xff not really a jpeg"))
    return job


@pytest.fixture
def alices_live_job(alice):
    return Job.objects.create(
        owner=alice,
        prompt="a fox in the snow",
        model="ir/test-video",
        status=Job.Status.RUNNING,
        attempt=1,
    )


@pytest.fixture(autouse=True)
def _fast_passwords(fast_passwords):
    """Hundreds of log-ins and sign-ups: the fuzzing is of requests, not of PBKDF2."""
