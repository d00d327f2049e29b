"""Retention and storage on S3 (STORAGE_BACKEND=s3), against a real S3 server on loopback
(tests/s3.py): expired videos' objects really leave the bucket while the job and its cost stay,
a starred video's stay, sizes are the objects' sizes, and a full team is refused."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from jobs import services
from jobs.models import CostEntry, Job
from jobs.services import tokens
from tests.factories import stored_job, team_with
from tests.jobs.test_s3 import use_bucket
from tests.s3 import S3Server

pytestmark = pytest.mark.usefixtures("catalog", "broker_url", "fast_passwords")


@pytest.fixture(scope="module")
def s3_server():
    with S3Server() as server:
        yield server


@pytest.fixture
def bucket(s3_server, settings):
    name = f"videos-{uuid.uuid4().hex[:12]}"
    s3_server.client.create_bucket(Bucket=name)
    use_bucket(settings, s3_server, name)
    assert default_storage.bucket_name == name
    return name


def aged(job: Job, days: float) -> Job:
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=days))
    return Job.objects.get(pk=job.pk)


def object_sizes(server, bucket, job) -> int:
    names = [f.name for f in (job.video, job.poster, job.input_image) if f]
    return sum(server.client.head_object(Bucket=bucket, Key=n)["ContentLength"] for n in names)


def test_retention_deletes_the_objects_and_keeps_the_job_its_cost_and_starred_videos(
    alice, alice_client, s3_server, bucket, settings
):
    settings.RETENTION_DAYS = 30
    old = aged(stored_job(alice, "an old tram"), 31)
    starred = aged(stored_job(alice, "a kept tram"), 90)
    young = stored_job(alice, "a new tram")
    services.job_star_set(job=starred, starred=True)

    counts = services.sweep()

    assert counts["jobs_expired"] == 1
    kept = [starred.video.name, starred.poster.name, young.video.name, young.poster.name]
    assert s3_server.keys(bucket) == sorted(kept)
    old.refresh_from_db()
    assert old.expired_at is not None and old.prompt == "an old tram" and old.stored_bytes == 0
    assert CostEntry.objects.filter(job=old).exists()
    # Its URL says it expired instead of redirecting to an object that is gone.
    assert alice_client.get(reverse("jobs:video", args=[old.pk])).status_code == 410


def test_sizes_are_the_objects_sizes_and_the_command_measures_older_ones(
    alice, s3_server, bucket, capsys
):
    job = stored_job(alice)
    assert job.stored_bytes == object_sizes(s3_server, bucket, job)

    Job.objects.filter(pk=job.pk).update(stored_bytes=None)
    call_command("record_storage_sizes")

    assert Job.objects.get(pk=job.pk).stored_bytes == object_sizes(s3_server, bucket, job)


def test_a_full_team_on_s3_refuses_a_new_video(alice, api, s3_server, bucket):
    design = team_with("Design", members=[alice])
    job = stored_job(alice, team=design)
    # A quota of exactly what the team's objects take, to the kilobyte: full.
    used_kb = object_sizes(s3_server, bucket, job) // 1000
    services.team_storage_set(
        team=design, retention_days=None, storage_quota_gb=Decimal(used_kb) / 10**6, by=None
    )
    _, key = tokens.token_create(user=alice, name="design script", team=design)

    response = api.post(
        key,
        "/v1/openai/videos/generations?async=true",
        json={"model": "ir/test-video", "prompt": "one more"},
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "storage_quota_full"
    assert Job.objects.filter(team=design).count() == 1
