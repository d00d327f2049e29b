"""Where rendered videos live, and how `GET /storage/<uuid>.mp4` serves them.

The provider's result URLs are public, so downloads need no key. Files are streamed from disk
in chunks with Range support, and a `download_fail` fault can make the first downloads of one
file fail with a 500 or stop short of the Content-Length it declared.
"""

import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from .server import AbortConnection
from .web import Response, error_response

CHUNK = 1024 * 1024
VIDEO_NAME = re.compile(r"^/storage/([0-9a-f-]{36})\.mp4$")
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class Storage:
    def __init__(self, root: Path):
        self.root = Path(root)
        # Renders happen in here so that keeping one is a rename, never a copy.
        self.work = self.root / "work"
        self.work.mkdir(parents=True, exist_ok=True)

    def work_dir(self) -> Path:
        return Path(tempfile.mkdtemp(dir=self.work))

    def keep(self, rendered: Path) -> str:
        """Move a finished render into storage and return its id."""
        video_id = str(uuid.uuid4())
        os.replace(rendered, self.path(video_id))
        return video_id

    def path(self, video_id: str) -> Path:
        return self.root / f"{video_id}.mp4"

    @staticmethod
    def discard(work_dir: Path):
        shutil.rmtree(work_dir, ignore_errors=True)


def serve(storage: Storage, state, request_path: str, range_header: str, method: str) -> Response:
    match = VIDEO_NAME.match(request_path)
    path = storage.path(match.group(1)) if match else None
    if path is None or not path.is_file():
        return error_response(404, "File not found", "not_found")
    state.count("downloads")
    failure = state.take_download_fault(match.group(1))
    if failure == "error":
        return error_response(500, "Simulated storage failure", "internal_error")

    size = path.stat().st_size
    start, end, status = 0, size - 1, 200
    headers = [("Content-Type", "video/mp4"), ("Accept-Ranges", "bytes")]
    if range_header:
        wanted = _parse_range(range_header, size)
        if wanted is None:
            headers.append(("Content-Range", f"bytes */{size}"))
            return Response(416, [b""], [*headers, ("Content-Length", "0")])
        start, end, status = *wanted, 206
        headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
    length = end - start + 1
    headers.append(("Content-Length", str(length)))
    if method == "HEAD":
        return Response(status, [b""], headers)
    # A truncated download declares the full length and then stops half way.
    limit = length // 2 if failure == "truncate" else length
    return Response(status, _read(path, start, limit, abort=failure == "truncate"), headers)


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    match = RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # bytes=-N: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return None
    return start, end


def _read(path: Path, start: int, length: int, abort: bool):
    with path.open("rb") as f:
        f.seek(start)
        while length > 0:
            chunk = f.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    if abort:
        raise AbortConnection()
