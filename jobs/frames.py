"""Still frames from stored videos, with the ffmpeg that the imageio-ffmpeg wheel ships."""

import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import imageio_ffmpeg

FFMPEG_TIMEOUT_SECONDS = 60


class FrameError(Exception):
    """ffmpeg could not read a frame from the video."""


def frame_image(field_file, *, last: bool = False, image_format: str = "jpeg") -> bytes:
    """The first (or last) frame of a stored video, as JPEG (posters) or PNG (a frame to reuse
    as an input image, kept lossless). Raises FrameError if the video does not decode."""
    codec = {"jpeg": "mjpeg", "png": "png"}[image_format]
    with _local_path(field_file) as source, tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / f"frame.{image_format}"
        # For the last frame, seek to a second before the end and keep overwriting one image:
        # what remains is the final frame, without decoding the whole video.
        seek = ["-sseof", "-1"] if last else []
        keep = ["-update", "1"] if last else ["-frames:v", "1"]
        quality = ["-q:v", "3"] if image_format == "jpeg" else []
        completed = subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", *seek, "-i", str(source),
             "-map", "0:v:0", *keep, "-c:v", codec, *quality, "-y", str(target)],
            capture_output=True,
            timeout=FFMPEG_TIMEOUT_SECONDS,
            check=False,
        )  # fmt: skip
        if completed.returncode != 0 or not target.exists() or target.stat().st_size == 0:
            raise FrameError(completed.stderr.decode(errors="replace")[-500:] or "no frame")
        return target.read_bytes()


@contextmanager
def _local_path(field_file):
    """A path ffmpeg can open: the file itself on local storage, else a temporary copy."""
    try:
        yield Path(field_file.storage.path(field_file.name))
        return
    except NotImplementedError:
        pass
    with tempfile.NamedTemporaryFile(suffix=".mp4") as copy:
        with field_file.storage.open(field_file.name, "rb") as stored:
            shutil.copyfileobj(stored, copy, 1024 * 1024)
        copy.flush()
        yield Path(copy.name)
