"""Still frames from real stored videos: posters and last frames."""

import io

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from jobs.frames import FrameError, frame_image
from jobs.models import Job
from tests.factories import stored_job

pytestmark = pytest.mark.usefixtures("catalog")


@pytest.fixture
def alices_video(alice):
    return stored_job(alice, "a clock ticking")


def test_the_first_frame_is_a_jpeg_of_the_videos_size(alices_video):
    picture = Image.open(io.BytesIO(frame_image(alices_video.video)))
    assert picture.format == "JPEG"
    assert picture.size == (640, 360)


def test_the_last_frame_is_a_lossless_png_and_differs_from_the_first(alices_video):
    first = Image.open(io.BytesIO(frame_image(alices_video.video, image_format="png")))
    last = Image.open(io.BytesIO(frame_image(alices_video.video, last=True, image_format="png")))

    assert last.format == "PNG" and last.size == (640, 360)
    assert first.tobytes() != last.tobytes()  # the simulator's frames move


def test_a_file_that_is_not_a_video_raises_frame_error(alice):
    job = Job.objects.create(owner=alice, model="ir/test-video")
    job.video.save("broken.mp4", ContentFile(b"\0\0\0\x18ftypmp42 not really a video"))

    with pytest.raises(FrameError):
        frame_image(job.video)
