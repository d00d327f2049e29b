"""Probe an MP4 with the ffmpeg binary that imageio-ffmpeg ships (there is no ffprobe)."""

import re
import subprocess
from dataclasses import dataclass

import imageio_ffmpeg


@dataclass
class VideoInfo:
    codec: str
    width: int
    height: int
    duration: float


def probe(path) -> VideoInfo:
    """Decode the whole file (so a broken one fails) and read its stream facts."""
    completed = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    stream = re.search(r"Video: (\w+).*?, (\d{2,5})x(\d{2,5})", completed.stderr)
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", completed.stderr)
    assert stream and duration, completed.stderr[-2000:]
    hours, minutes, seconds = duration.groups()
    return VideoInfo(
        codec=stream[1],
        width=int(stream[2]),
        height=int(stream[3]),
        duration=int(hours) * 3600 + int(minutes) * 60 + float(seconds),
    )
