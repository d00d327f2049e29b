"""A .zip written as it is sent: stored files read in chunks from the storage (local disk or S3),
entries written as they are read, and the bytes handed to the response after every chunk. The
memory a download holds is one chunk, whatever the size of the files in it or of the whole zip.

    stream = ZipStream()
    yield from stream.add_stored_file("videos/a.mp4", job.video, when=job.created_at)
    yield from stream.add_text("data.json", pieces_of_json)
    yield from stream.close()
"""

import io
import logging
import zipfile
from collections.abc import Iterable, Iterator

from django.utils import timezone

from jobs.serving import _is_s3

logger = logging.getLogger(__name__)

# How much of a stored file is read, written to the zip and handed to the server at a time.
CHUNK_BYTES = 64 * 1024


class ZipSink(io.RawIOBase):
    """Where zipfile writes the archive. It cannot seek, so zipfile writes each entry's sizes and
    CRC after its data (a data descriptor) instead of going back to the header; the response
    takes what piled up after every chunk, so at most one chunk is held at a time."""

    def __init__(self):
        super().__init__()
        self._pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._pending += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._pending)
        self._pending.clear()
        return data


def stored_file_chunks(field_file, *, chunk_bytes: int = CHUNK_BYTES) -> tuple[int, Iterator]:
    """(size, chunks) of a stored file, read `chunk_bytes` at a time; FileNotFoundError when it
    is not in the storage. The file is opened here, before the first chunk, so a missing one is
    known before its zip entry is begun.

    On S3 the object's body is read straight from the GET's response as it arrives: the
    storage's own file object would first copy the whole object to a temporary file."""
    storage, name = field_file.storage, field_file.name
    if _is_s3(storage):
        from botocore.exceptions import ClientError
        from storages.utils import clean_name

        key = storage._normalize_name(clean_name(name))
        try:
            answer = storage.bucket.Object(key).get()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(name) from None
            raise
        body = answer["Body"]
        return answer["ContentLength"], _closing_chunks(body, chunk_bytes)
    size = storage.size(name)
    return size, _closing_chunks(storage.open(name, "rb"), chunk_bytes)


def _closing_chunks(handle, chunk_bytes: int):
    try:
        while chunk := handle.read(chunk_bytes):
            yield chunk
    finally:
        handle.close()


class ZipStream:
    """One archive, written entry by entry. Each add_* is a generator of the bytes ready to send;
    close() yields the central directory. Stored files are stored, not deflated (MP4, JPEG and
    PNG are compressed already, and storing costs no CPU); text is deflated."""

    def __init__(self):
        self.sink = ZipSink()
        self.archive = zipfile.ZipFile(self.sink, mode="w", compression=zipfile.ZIP_STORED)

    def _info(self, name: str, when, compress_type: int) -> zipfile.ZipInfo:
        moment = timezone.localtime(when or timezone.now())
        info = zipfile.ZipInfo(name, date_time=moment.timetuple()[:6])
        info.compress_type = compress_type
        info.external_attr = 0o644 << 16  # rw-r--r-- when unzipped on a Unix
        return info

    def add_stored_file(self, name: str, field_file, *, when=None) -> Iterator[bytes]:
        """The stored file as entry `name`. A file missing from storage raises
        FileNotFoundError before anything of its entry is written."""
        size, chunks = stored_file_chunks(field_file)
        info = self._info(name, when, zipfile.ZIP_STORED)
        info.file_size = size  # lets zipfile choose ZIP64 up front for a file over 4 GB
        with self.archive.open(info, mode="w") as entry:
            for chunk in chunks:
                entry.write(chunk)
                if data := self.sink.take():
                    yield data
        if data := self.sink.take():
            yield data

    def add_text(self, name: str, pieces: Iterable[str], *, when=None) -> Iterator[bytes]:
        """Entry `name` from text written piece by piece (UTF-8, deflated)."""
        info = self._info(name, when, zipfile.ZIP_DEFLATED)
        # force_zip64: the text's size is not known up front, and it may pass 2 GB.
        with self.archive.open(info, mode="w", force_zip64=True) as entry:
            for piece in pieces:
                entry.write(piece.encode())
                if data := self.sink.take():
                    yield data
        if data := self.sink.take():
            yield data

    def close(self) -> Iterator[bytes]:
        self.archive.close()
        if data := self.sink.take():
            yield data
