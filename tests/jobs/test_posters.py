"""Posters: a JPEG of the first frame, made just after the video is stored (in a task of its own,
off the job's path), never at the job's expense."""

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.utils import timezone
from PIL import Image

from jobs import frames, services
from jobs.models import Job
from tests.factories import new_job, stored_job

# broker_url: a URL result sends its store task, which must go to the tests' Redis database.
pytestmark = pytest.mark.usefixtures("catalog", "broker_url")


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
def test_a_stored_video_gets_a_jpeg_poster_of_its_size(alice, response_format):
    job = stored_job(alice, response_format=response_format)

    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.poster.name == f"posters/{job.created_at:%Y/%m}/{job.pk}.jpg"
    with job.poster.open("rb") as poster:
        picture = Image.open(poster)
        assert picture.format == "JPEG"
        assert picture.size == (640, 360)


def test_a_poster_that_cannot_be_saved_leaves_the_job_succeeded(alice, media_root, caplog):
    media_root.mkdir(parents=True, exist_ok=True)
    (media_root / "posters").write_bytes(b"")  # a file where the folder must go: saving fails

    with caplog.at_level(logging.WARNING, logger="jobs.services.running"):
        job = stored_job(alice, poster=False)

    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.video and not job.poster
    assert f"job {job.pk}: no poster" in caplog.text


def test_a_poster_that_ffmpeg_cannot_make_in_time_leaves_the_job_succeeded(
    alice, monkeypatch, caplog
):
    # Real ffmpeg, really cut off: the same as a frame extraction that hangs on a bad file.
    monkeypatch.setattr(frames, "FFMPEG_TIMEOUT_SECONDS", 0.001)

    with caplog.at_level(logging.WARNING, logger="jobs.services.running"):
        job = stored_job(alice, poster=False)

    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.video and not job.poster
    assert f"job {job.pk}: no poster (TimeoutExpired" in caplog.text


def test_deleting_a_job_removes_its_poster_file(alice):
    job = stored_job(alice)
    poster = Path(job.poster.path)
    assert poster.exists()

    assert services.job_delete(job=job)

    job.refresh_from_db()
    assert not job.poster
    assert not poster.exists()


def test_the_job_succeeds_first_and_its_poster_follows(alice):
    job = new_job(alice, "a kite over a beach", size="640x360", response_format="url")
    services.job_run(job_id=job.pk)
    services.job_store(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.video and not job.poster

    services.job_make_poster(job_id=job.pk)

    job.refresh_from_db()
    assert job.poster and Path(job.poster.path).exists()


def test_a_poster_made_after_its_job_was_deleted_leaves_no_file(alice, media_root):
    job = new_job(alice, "a kite over a beach", size="640x360", response_format="b64_json")
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert services.job_delete(job=job)

    services.job_make_poster(job_id=job.pk)

    job.refresh_from_db()
    assert not job.poster
    assert not list((media_root / "posters").rglob("*.jpg"))


def test_a_second_poster_task_for_the_same_job_changes_nothing(alice, media_root):
    job = stored_job(alice)
    first = job.poster.name

    services.job_make_poster(job_id=job.pk)

    job.refresh_from_db()
    assert job.poster.name == first
    assert len(list((media_root / "posters").rglob("*.jpg"))) == 1


def test_a_poster_whose_task_was_lost_is_asked_for_once_by_the_sweeper(alice, broker_url):
    """The poster worker stopped, or Redis lost the message: ten minutes after the job finished
    the sweeper asks once more, and only once, even if that poster never comes either."""
    broker = redis.Redis.from_url(broker_url)
    lost, recent = (
        new_job(alice, f"no poster {n}", size="640x360", response_format="b64_json")
        for n in range(2)
    )
    for job in (lost, recent):
        services.job_run(job_id=job.pk)  # stored; its poster task is sent and lost below
    long_ago = timezone.now() - timedelta(minutes=11)
    Job.objects.filter(pk=lost.pk).update(
        enqueued_at=long_ago - timedelta(seconds=5), finished_at=long_ago
    )
    broker.delete("poster")

    assert services.sweep()["posters_retried"] == 1
    assert services.sweep()["posters_retried"] == 0
    assert broker.llen("poster") == 1
    message = json.loads(broker.lpop("poster"))
    assert message["headers"]["argsrepr"] == repr((str(lost.pk),))

    services.job_make_poster(job_id=lost.pk)  # what the poster worker does with it
    lost.refresh_from_db()
    assert lost.poster
