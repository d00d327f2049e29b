"""What an input image must be before the studio keeps it: a PNG, JPEG or WebP that really is
one, fully decodes, and is not too big in bytes or pixels. The generate form's image field (and so
the API, which posts through the same form) runs checked_image; each refusal is a ValidationError
with words for the person.

Not to be confused with jobs/api/images.py, which turns the API's image strings (a data URI or a
URL) into an upload that then comes here."""

import io
import os
import struct
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from PIL import Image, UnidentifiedImageError

from .wording import file_size, pixel_count


@dataclass(frozen=True)
class ImageKind:
    label: str  # as people know it
    extension: str  # the studio stores an upload as input.<extension>, whatever it was called
    content_types: frozenset[str]  # what browsers send for it, odd old spellings included


# The input images the studio accepts, by Pillow's format name.
IMAGE_FORMATS = {
    "PNG": ImageKind("PNG", "png", frozenset({"image/png", "image/x-png"})),
    "JPEG": ImageKind("JPEG", "jpg", frozenset({"image/jpeg", "image/jpg", "image/pjpeg"})),
    "WEBP": ImageKind("WebP", "webp", frozenset({"image/webp"})),
}
# Pillow names a JPEG that carries extra pictures (many cameras and phones write them) "MPO".
# Every JPEG decoder reads its first picture, so it is a JPEG for the studio's purposes.
FORMAT_ALIASES = {"MPO": "JPEG"}
# What Pillow raises on a damaged file, besides UnidentifiedImageError (an OSError) for a file
# that is no image at all.
PILLOW_READ_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    struct.error,
)
# JPEG start-of-frame markers, which carry the image size (C4, C8 and CC are not frames).
JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}

NOT_AN_IMAGE = "This file is not an image. Choose a PNG, JPEG or WebP picture."
UNREADABLE_IMAGE = (
    "This file is damaged or cut short: it is not an image we can read. "
    "Save it again and try once more."
)


def checked_image(upload):
    """`upload`, checked, renamed input.<extension of the format found inside> and rewound. It
    keeps none of what the browser said about it.

    1. Refuse more than UPLOAD_MAX_BYTES.
    2. Read the width and height from the header ourselves and refuse too many pixels,
       before Pillow allocates or decodes anything.
    3. Open it with Pillow (decompression-bomb warnings made errors): refuse a file that is
       not an image, a format we do not accept, or too many pixels; verify() its structure.
    4. Refuse a name or Content-Type that claims another image format.
    5. Decode it in full (load() on a fresh open), so a damaged file fails here, not later.
    """
    _check_upload_bytes(upload.size)
    upload.seek(0)
    data = upload.read()
    _check_pixels(_header_size(data))
    kind = _identify(data)
    _check_claimed_format(upload, kind)
    _check_decodes(data)
    upload.seek(0)
    upload.name = f"input.{IMAGE_FORMATS[kind].extension}"
    return upload


def _check_upload_bytes(size: int) -> None:
    limit = settings.UPLOAD_MAX_BYTES
    if size > limit:
        raise ValidationError(
            f"This file is {file_size(size, round_up=True)}; the most we accept is "
            f"{file_size(limit)}. Save a smaller image and try again."
        )


def _max_pixels() -> int:
    """Our limit, or Pillow's decompression-bomb limit if that is lower: above it, Pillow
    would warn, and the warning is an error here."""
    if Image.MAX_IMAGE_PIXELS is None:
        return settings.UPLOAD_MAX_PIXELS
    return min(settings.UPLOAD_MAX_PIXELS, Image.MAX_IMAGE_PIXELS)


def _check_pixels(size: tuple[int, int] | None) -> None:
    if size is not None and size[0] * size[1] > _max_pixels():
        raise ValidationError(_too_many_pixels(size))


def _too_many_pixels(size: tuple[int, int] | None) -> str:
    limit = f"the most we accept is {pixel_count(_max_pixels())}"
    if size is None:  # Pillow refused it before saying its size
        return f"This image has too many pixels; {limit}. Scale it down and try again."
    return f"This image is {size[0]} × {size[1]} pixels; {limit}. Scale it down and try again."


def _header_size(data: bytes) -> tuple[int, int] | None:
    """The width and height a PNG, JPEG or WebP header declares, read without Pillow, so the
    pixel limit holds before anything is allocated or decoded (Pillow's WebP reader allocates
    its canvas as it opens). None for other formats, which _identify then checks through Pillow.
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        size = _webp_size(data)
        if size is None:  # Pillow would not know it either, and would allocate regardless
            raise ValidationError(UNREADABLE_IMAGE)
        return size
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """The canvas size from a WebP's first chunk: VP8X (extended), VP8L (lossless) or VP8."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return (
            int.from_bytes(data[24:27], "little") + 1,
            int.from_bytes(data[27:30], "little") + 1,
        )
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return (
            int.from_bytes(data[26:28], "little") & 0x3FFF,
            int.from_bytes(data[28:30], "little") & 0x3FFF,
        )
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk a JPEG's marker segments to its frame header, which holds the size. None if there
    is none before the image data starts (Pillow then reads it, without decoding)."""
    position = 2
    while (position := data.find(b"\xff", position)) != -1 and position + 1 < len(data):
        marker = data[position + 1]
        if marker in (0x00, 0x01, 0xFF) or 0xD0 <= marker <= 0xD8:
            position += 1 if marker == 0xFF else 2  # fill byte, or a marker with no segment
            continue
        if marker in (0xD9, 0xDA):  # end of image, or start of the image data
            return None
        if marker in JPEG_FRAME_MARKERS:
            if position + 9 > len(data):
                return None
            height, width = struct.unpack_from(">HH", data, position + 5)
            return width, height
        if position + 4 > len(data):
            return None
        position += 2 + max(2, int.from_bytes(data[position + 2 : position + 4], "big"))
    return None


@contextmanager
def _reading_image():
    """Pillow, strict: a decompression-bomb warning is an error, and any failure to read is a
    message for the person.

    catch_warnings swaps the process-wide filter list, which is not thread-safe before Python
    3.14: a request on another thread may see our filter or drop it. Nothing relies on it alone:
    the pixel checks before and after Image.open hold anyway, and the filter only backs them up.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise ValidationError(_too_many_pixels(None)) from None
        except UnidentifiedImageError:
            raise ValidationError(NOT_AN_IMAGE) from None
        except PILLOW_READ_ERRORS:
            raise ValidationError(UNREADABLE_IMAGE) from None


def _identify(data: bytes) -> str:
    """The format Pillow finds inside (a key of IMAGE_FORMATS), after a structural verify()."""
    with _reading_image(), Image.open(io.BytesIO(data)) as picture:
        kind = _canonical(picture.format)
        if kind not in IMAGE_FORMATS:
            raise ValidationError(f"{kind} images are not accepted: use PNG, JPEG or WebP.")
        _check_pixels(picture.size)
        picture.verify()
    return kind


def _check_claimed_format(upload, kind: str) -> None:
    """Refuse a file whose name or Content-Type names another image format than the one inside.

    A name or type that names no image format (no extension, "blob", "a.php",
    application/octet-stream) is not refused: the studio ignores both and stores the file as
    input.<the real format's extension>, so they can do no harm, and phones and pasted images
    often send them.
    """
    real = IMAGE_FORMATS[kind]
    extension = os.path.splitext(upload.name or "")[1].lower()
    named = _canonical(Image.registered_extensions().get(extension))
    if named is not None and named != kind:
        raise ValidationError(
            f"This file is named {extension} but holds a {real.label} image. "
            f"Rename it to end in .{real.extension} and try again."
        )
    content_type = (upload.content_type or "").strip().lower()
    sent_as = _canonical(_formats_by_content_type().get(content_type))
    if sent_as is not None and sent_as != kind:
        raise ValidationError(
            f"This file was sent as {content_type} but holds a {real.label} image. "
            f"Save it again as a {real.label} file ending in .{real.extension} and try again."
        )


def _canonical(pillow_format: str | None) -> str | None:
    return FORMAT_ALIASES.get(pillow_format, pillow_format)


def _formats_by_content_type() -> dict[str, str]:
    """Every Content-Type that names an image format Pillow knows, ours included."""
    Image.init()
    known = {content_type: name for name, content_type in Image.MIME.items()}
    for name, kind in IMAGE_FORMATS.items():
        known.update(dict.fromkeys(kind.content_types, name))
    return known


def _check_decodes(data: bytes) -> None:
    """verify() cannot see damaged image data (and does nothing for JPEG): decode it all."""
    with _reading_image(), Image.open(io.BytesIO(data)) as picture:
        picture.load()
