"""Fixtures for the hostile-input tests: the API's (tokens, the `api` client) and a job of
alice's with a video, to aim inputs at."""

import pytest
from django.core.files.base import ContentFile

from jobs.models import Job
from tests.gateway.conftest import alice_key, api, bob_key, token_for  # noqa: F401

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
def fast_passwords(settings):
    """Hundreds of log-ins and sign-ups: a fast hasher keeps the fuzzing to requests, not to
    PBKDF2. Nothing here tests password storage."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
