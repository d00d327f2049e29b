"""Is this file a whole MP4? Read from its box headers alone, without decoding anything.

An MP4 is a sequence of top-level boxes, each starting with its size and a four-letter type
(ISO/IEC 14496-12, 4.2). A complete file starts with `ftyp`, holds the `moov` index and the
`mdat` media data, and its boxes tile it exactly. A download cut short ends inside a box; one
with bytes appended, or not an MP4 at all, does not tile. This reads a few bytes per box, so it
costs microseconds where ffmpeg's decode of a frame costs about 20 ms of CPU: the store step,
which every job waits on, uses it, and the first decode happens when the poster is made
(bench/inflight.py measured the difference).
"""

import os
import struct

HEADER = struct.Struct(">I4s")
LARGE_SIZE = struct.Struct(">Q")
REQUIRED = {b"moov": "no moov index", b"mdat": "no media data"}


class NotMP4Error(ValueError):
    """The file is not a complete MP4; the message says what is wrong."""


def check_mp4(file) -> None:
    """Raise NotMP4Error unless `file` (a binary file object, read from its start) is a whole
    MP4. Leaves the position wherever it ends; callers seek before reading again."""
    size = file.seek(0, os.SEEK_END)
    position, seen = 0, set()
    while position < size:
        file.seek(position)
        header = file.read(HEADER.size)
        if len(header) < HEADER.size:
            raise NotMP4Error("it ends inside a box header (cut short?)")
        box_size, box_type = HEADER.unpack(header)
        header_size = HEADER.size
        if box_size == 1:  # the size follows the type, as 64 bits
            large = file.read(LARGE_SIZE.size)
            if len(large) < LARGE_SIZE.size:
                raise NotMP4Error("it ends inside a box header (cut short?)")
            (box_size,) = LARGE_SIZE.unpack(large)
            header_size += LARGE_SIZE.size
        elif box_size == 0:  # the last box, running to the end of the file
            box_size = size - position
        if position == 0 and box_type != b"ftyp":
            raise NotMP4Error("it is not an MP4 file")
        if box_size < header_size:
            raise NotMP4Error(f"a {_name(box_type)} box has an impossible size")
        seen.add(box_type)
        position += box_size
    if position != size or size == 0:
        raise NotMP4Error("it ends inside a box (cut short?)" if size else "it is empty")
    for box_type, problem in REQUIRED.items():
        if box_type not in seen:
            raise NotMP4Error(problem)


def _name(box_type: bytes) -> str:
    return repr(box_type.decode("latin-1"))
