"""Helpers to make input images and to look inside the MP4s the simulator renders."""

import base64
import io
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
from PIL import Image

GENERATIONS = "/v1/openai/videos/generations"
KEY = "sim-test-key-" + "k" * 51  # the key the simulator's own tests send


def png_bytes(color=(220, 30, 30), size=(96, 64), fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


def data_uri(data: bytes, mime="image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@dataclass
class VideoInfo:
    codec: str
    width: int
    height: int
    seconds: float


def probe(path: Path) -> VideoInfo:
    """Read codec, size and duration from `ffmpeg -i`, which describes the file on stderr."""
    text = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
    ).stderr
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    stream = re.search(r"Video: (\w+).*?, (\d+)x(\d+)", text)
    assert duration and stream, text
    hours, minutes, seconds = duration.groups()
    return VideoInfo(
        codec=stream.group(1),
        width=int(stream.group(2)),
        height=int(stream.group(3)),
        seconds=int(hours) * 3600 + int(minutes) * 60 + float(seconds),
    )


def decodes_fully(path: Path) -> bool:
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0 and not result.stderr.strip()


def frame(path: Path, at: float, size=(32, 18)) -> Image.Image:
    """One decoded frame, shrunk, as an RGB image."""
    raw = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            *("-v", "error", "-ss", str(at), "-i", str(path), "-frames:v", "1"),
            *("-vf", f"scale={size[0]}:{size[1]}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"),
        ],
        capture_output=True,
        check=True,
    ).stdout
    return Image.frombytes("RGB", size, raw)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    pairs = zip(a.tobytes(), b.tobytes(), strict=True)
    return sum(abs(x - y) for x, y in pairs) / (a.width * a.height * 3)


def raw_post(url: str, path: str, body: bytes, headers: dict) -> tuple[str, list]:
    """POST over a bare socket; return the response head and every read as (seconds, bytes).

    requests hides how the body arrives; this shows the spaces coming before the JSON.
    """
    host, port = url.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    started = time.monotonic()
    reads = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        while data := sock.recv(65536):
            reads.append((time.monotonic() - started, data))
    raw = b"".join(data for _, data in reads)
    head, _, _ = raw.partition(b"\r\n\r\n")
    return head.decode("latin-1"), reads


def dechunk(raw: bytes) -> bytes:
    """Undo chunked transfer encoding, insisting on the final zero-length chunk."""
    body, rest = b"", raw
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return body
        body, rest = body + rest[:size], rest[size + 2 :]
