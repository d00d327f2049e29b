"""Still frames from real stored videos: posters and last frames."""

import io

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from jobs import services
from jobs.frames import FrameError, frame_image
from jobs.models import Job
from tests.helpers import run_job_now

pytestmark = pytest.mark.usefixtures("catalog")


@pytest.fixture
def stored_job(alice):
    job = services.job_create(
        owner=alice, prompt="a clock ticking", model="ir/test-video", size="640x360",
        seconds="auto", response_format="b64_json",
    )  # fmt: skip
    run_job_now(job.pk)
    job.refresh_from_db()
    assert job.video
    return job


def test_the_first_frame_is_a_jpeg_of_the_videos_size(stored_job):
    picture = Image.open(io.BytesIO(frame_image(stored_job.video)))
    assert picture.format == "JPEG"
    assert picture.size == (640, 360)


def test_the_last_frame_is_a_lossless_png_and_differs_from_the_first(stored_job):
    first = Image.open(io.BytesIO(frame_image(stored_job.video, image_format="png")))
    last = Image.open(io.BytesIO(frame_image(stored_job.video, last=True, image_format="png")))

    assert last.format == "PNG" and last.size == (640, 360)
    assert first.tobytes() != last.tobytes()  # the simulator's frames move


def test_a_file_that_is_not_a_video_raises_frame_error(alice):
    job = Job.objects.create(owner=alice, model="ir/test-video")
    job.video.save("broken.mp4", ContentFile(b"\0\0\0\x18ftypmp42 not really a video"))

    with pytest.raises(FrameError):
        frame_image(job.video)
