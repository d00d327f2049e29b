"""Media for tests: probe an MP4 with the ffmpeg binary that imageio-ffmpeg ships (there is no
ffprobe), and make image bytes for upload tests."""

import io
import re
import struct
import subprocess
import zlib
from dataclasses import dataclass

import imageio_ffmpeg
from PIL import Image

MEGABYTE = 1024 * 1024


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


def image_bytes(kind: str = "PNG", size=(32, 32), *, noise: bool = False, **options) -> bytes:
    """A small real image in Pillow's format `kind` (PNG, JPEG, WEBP, GIF, BMP, TIFF, MPO...):
    one flat colour, or grey noise, which compresses poorly, so cutting the file loses pixels."""
    buffer = io.BytesIO()
    if noise:
        picture = Image.effect_noise(size, 80).convert("RGB")
    else:
        picture = Image.new("RGB", size, (10, 120, 200))
    if kind == "MPO":  # a JPEG carrying a second picture, as many cameras write
        options = {"save_all": True, "append_images": [picture.copy()], **options}
    picture.save(buffer, kind, **options)
    return buffer.getvalue()


def blank_png(width: int, height: int) -> bytes:
    """A real, valid, all-black 1-bit PNG of any size, written row by row so that even a
    20000 x 20000 one (400 megapixels) takes a few tens of KB and never a whole frame of memory."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the row's bits
    compressor = zlib.compressobj(9)
    rows_per_block = max(1, 1_000_000 // len(row))
    data = b""
    for start in range(0, height, rows_per_block):
        data += compressor.compress(row * min(rows_per_block, height - start))
    data += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
