"""The input image: only a real, readable PNG, JPEG or WebP within the byte and pixel limits gets
through, and it is stored under a name the studio picks."""

import hashlib
import io
import math
import re
import struct
import zlib

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from jobs.forms import JobForm
from jobs.models import Job
from jobs.selectors import catalog_models
from tests.factories import form_data
from tests.media import MEGABYTE, blank_png, image_bytes

pytestmark = pytest.mark.usefixtures("catalog", "upload_limits")

CONTENT_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "MPO": "image/jpeg",
}


def form_with(name, data, content_type="image/png"):
    image = SimpleUploadedFile(name, data, content_type=content_type)
    fields = form_data(prompt="the sea, moving", seconds="auto")
    return JobForm(fields, {"image": image}, models=list(catalog_models(user=AnonymousUser())))


def image_error(form) -> str:
    assert not form.is_valid()
    assert list(form.errors) == ["image"], form.errors
    return form.errors["image"][0]


def with_declared_size(data: bytes, width: int, height: int) -> bytes:
    """The same small file, its header claiming another width and height."""
    data = bytearray(data)
    if data.startswith(b"\xff\xd8"):
        # The start of frame (baseline C0 or progressive C2): length, precision, height, width.
        frame = min(data.find(marker) for marker in (b"\xff\xc0", b"\xff\xc2") if marker in data)
        data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    elif data[12:16] == b"VP8 ":
        data[26:30] = struct.pack("<HH", width, height)
    elif data[12:16] == b"VP8L":
        kept = int.from_bytes(data[21:25], "little") & ~0x0FFF_FFFF  # alpha hint and version
        data[21:25] = (kept | (width - 1) | (height - 1) << 14).to_bytes(4, "little")
    elif data[12:16] == b"VP8X":
        data[24:30] = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    elif data.startswith(b"GIF"):
        data[6:10] = struct.pack("<HH", width, height)
    else:
        raise ValueError("no header to patch")
    return bytes(data)


def exif() -> Image.Exif:
    tags = Image.Exif()
    tags[0x010E] = "a description long enough to push the frame header along " * 20
    return tags


# What gets through, and under what name.


@pytest.mark.parametrize(
    ("kind", "stored_name"),
    [("PNG", "input.png"), ("JPEG", "input.jpg"), ("WEBP", "input.webp"), ("MPO", "input.jpg")],
)
def test_a_real_png_jpeg_or_webp_is_accepted_and_named_by_its_format(kind, stored_name):
    form = form_with(f"holiday.{kind.lower()}", image_bytes(kind), CONTENT_TYPES[kind])

    assert form.is_valid(), form.errors
    assert form.cleaned_data["image"].name == stored_name


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("../../x.html", "text/html"),
        ("a.php", "application/x-php"),
        ("blob", "application/octet-stream"),
        ("photo", ""),
        ("HOLIDAY.PNG", "IMAGE/PNG"),
        ("scan.apng", "image/png"),
    ],
)
def test_a_name_or_type_that_names_no_other_image_format_is_not_held_against_a_real_png(
    name, content_type
):
    # The studio drops both: the file is stored as input.png and served as image/png.
    form = form_with(name, image_bytes("PNG"), content_type)

    assert form.is_valid(), form.errors
    assert form.cleaned_data["image"].name == "input.png"


@pytest.mark.parametrize(
    "name", ["photo.jpg", "photo.jpeg", "photo.JPG", "photo.jfif", "photo.jpe", "IMG_0001.mpo"]
)
def test_every_usual_jpeg_name_is_accepted_for_a_jpeg(name):
    assert form_with(name, image_bytes("JPEG"), "image/jpeg").is_valid()


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/jpg", "image/pjpeg"])
def test_every_usual_jpeg_type_is_accepted_for_a_jpeg(content_type):
    assert form_with("photo.jpg", image_bytes("JPEG"), content_type).is_valid()


def test_an_image_exactly_at_the_pixel_limit_is_accepted(settings):
    settings.UPLOAD_MAX_PIXELS = 32 * 32
    assert form_with("in.png", image_bytes("PNG", (32, 32))).is_valid()


def test_an_image_exactly_at_the_byte_limit_is_accepted(settings):
    data = image_bytes("PNG")
    settings.UPLOAD_MAX_BYTES = len(data)
    assert form_with("in.png", data).is_valid()


# Not an image, or not one we take.


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("notes.png", b"not really a png", "image/png"),
        ("notes.txt", b"Dear diary,\n" * 50, "text/plain"),
        (
            "paper.pdf",
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\n%%EOF\n",
            "application/pdf",
        ),
        (
            "noise.jpg",
            b"".join(hashlib.sha256(bytes([i])).digest() for i in range(128)),
            "image/jpeg",
        ),
        ("empty.png", b"", "image/png"),
    ],
    ids=["text-named-png", "text", "pdf", "random-bytes", "empty"],
)
def test_a_file_that_is_not_an_image_is_refused(name, data, content_type):
    form = form_with(name, data, content_type)
    if not data:  # Django refuses an empty upload before our checks run
        assert "empty" in image_error(form)
        return
    assert image_error(form) == "This file is not an image. Choose a PNG, JPEG or WebP picture."


@pytest.mark.parametrize(("kind", "label"), [("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF")])
def test_an_image_of_a_type_we_do_not_take_is_refused_by_name(kind, label):
    form = form_with(f"in.{kind.lower()}", image_bytes(kind), f"image/{kind.lower()}")
    assert image_error(form) == f"{label} images are not accepted: use PNG, JPEG or WebP."


# Too big, in bytes or in pixels.


def test_a_file_over_the_byte_limit_is_refused_with_the_limit_in_mb(settings):
    settings.UPLOAD_MAX_BYTES = 1 * MEGABYTE
    # Noise hardly compresses: a real PNG of about 1.3 MB.
    data = image_bytes("PNG", (720, 720), noise=True)
    assert 1.2 * MEGABYTE < len(data) < 1.5 * MEGABYTE
    megabytes = math.ceil(len(data) * 10 / MEGABYTE) / 10

    assert image_error(form_with("big.png", data)) == (
        f"This file is {megabytes} MB; the most we accept is 1 MB. "
        "Save a smaller image and try again."
    )


def test_a_file_a_byte_over_10_mb_does_not_read_as_10_mb():
    data = image_bytes("PNG") + bytes(10 * MEGABYTE + 1 - len(image_bytes("PNG")))

    assert image_error(form_with("big.png", data)).startswith(
        "This file is 10.1 MB; the most we accept is 10 MB."
    )


def test_a_limit_under_a_megabyte_is_said_in_kb(settings):
    settings.UPLOAD_MAX_BYTES = 100 * 1024
    data = image_bytes("PNG", (256, 256), noise=True)

    assert "the most we accept is 100 KB" in image_error(form_with("big.png", data))


def test_a_decompression_bomb_png_is_refused_from_its_header():
    bomb = blank_png(20_000, 20_000)  # 400 megapixels, 1.6 GB as RGBA, a few tens of KB here
    assert len(bomb) < 100_000

    assert image_error(form_with("bomb.png", bomb)) == (
        "This image is 20000 × 20000 pixels; the most we accept is 40 megapixels. "
        "Scale it down and try again."
    )


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(image_bytes("JPEG", exif=exif()), id="jpeg-with-exif-first"),
        pytest.param(image_bytes("JPEG", progressive=True), id="progressive-jpeg"),
        pytest.param(image_bytes("WEBP"), id="webp-lossy"),
        pytest.param(image_bytes("WEBP", lossless=True), id="webp-lossless"),
        pytest.param(image_bytes("WEBP", exif=exif()), id="webp-extended"),
    ],
)
def test_too_many_pixels_is_refused_from_the_header_of_every_format_we_take(data):
    data = with_declared_size(data, 9000, 9000)

    assert image_error(form_with("big", data, "")) == (
        "This image is 9000 × 9000 pixels; the most we accept is 40 megapixels. "
        "Scale it down and try again."
    )


def test_the_pixel_limit_follows_the_setting(settings):
    settings.UPLOAD_MAX_PIXELS = 1000

    assert form_with("in.png", image_bytes("PNG", (31, 32))).is_valid()
    assert image_error(form_with("in.png", image_bytes("PNG", (32, 32)))).startswith(
        "This image is 32 × 32 pixels; the most we accept is 1,000 pixels."
    )


def test_pillows_own_bomb_limit_still_holds_when_the_setting_is_higher(settings):
    settings.UPLOAD_MAX_PIXELS = 1_000_000_000
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # Pillow's default, untouched by the form

    assert image_error(form_with("bomb.png", blank_png(10_000, 10_000))) == (
        "This image is 10000 × 10000 pixels; the most we accept is 89.4 megapixels. "
        "Scale it down and try again."
    )
    assert Image.MAX_IMAGE_PIXELS == 89_478_485


@pytest.mark.parametrize(("width", "height"), [(10_000, 10_000), (20_000, 20_000)])
def test_pillows_bomb_warning_is_an_error_for_formats_we_do_not_read_ourselves(width, height):
    # 100 megapixels makes Pillow warn and 400 makes it refuse. Either way the file is refused
    # for its pixels before anything asks what format it is.
    gif = with_declared_size(image_bytes("GIF"), width, height)

    assert image_error(form_with("in.gif", gif, "image/gif")) == (
        "This image has too many pixels; the most we accept is 40 megapixels. "
        "Scale it down and try again."
    )


# A file that says it is one thing and holds another.


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        (
            "JPEG",
            "photo.png",
            "This file is named .png but holds a JPEG image. Rename it to end in .jpg and try again.",
        ),
        (
            "PNG",
            "photo.jpg",
            "This file is named .jpg but holds a PNG image. Rename it to end in .png and try again.",
        ),
        (
            "WEBP",
            "photo.jpeg",
            "This file is named .jpeg but holds a WebP image. Rename it to end in .webp and try "
            "again.",
        ),
        (
            "PNG",
            "photo.gif",
            "This file is named .gif but holds a PNG image. Rename it to end in .png and try again.",
        ),
    ],
)
def test_a_file_named_as_another_image_format_is_refused(kind, name, message):
    form = form_with(name, image_bytes(kind), CONTENT_TYPES[kind])
    assert image_error(form) == message


def test_a_jpeg_named_png_is_refused_even_when_sent_as_image_png():
    form = form_with("photo.png", image_bytes("JPEG"), "image/png")
    assert "named .png but holds a JPEG image" in image_error(form)


@pytest.mark.parametrize(
    ("kind", "content_type"),
    [("PNG", "image/jpeg"), ("JPEG", "image/png"), ("WEBP", "image/gif"), ("PNG", "image/tiff")],
)
def test_a_file_sent_as_another_image_type_is_refused(kind, content_type):
    form = form_with("upload", image_bytes(kind), content_type)
    assert image_error(form).startswith(
        f"This file was sent as {content_type} but holds a {'WebP' if kind == 'WEBP' else kind} "
        "image."
    )


# Damaged files.


def test_a_truncated_jpeg_that_passes_verify_is_refused():
    data = image_bytes("JPEG", (256, 256), noise=True)
    cut = data[: len(data) * 6 // 10]
    with Image.open(io.BytesIO(cut)) as picture:
        picture.verify()  # the premise: verify() alone lets this through

    assert image_error(form_with("cut.jpg", cut, "image/jpeg")) == (
        "This file is damaged or cut short: it is not an image we can read. "
        "Save it again and try once more."
    )


def test_a_png_with_damaged_pixel_data_but_good_checksums_is_refused():
    data = bytearray(image_bytes("PNG", (64, 64), noise=True))
    start = data.index(b"IDAT")
    length = struct.unpack(">I", data[start - 4 : start])[0]
    body = start + 4
    data[body + 2 : body + length] = bytes(reversed(data[body + 2 : body + length]))
    data[body + length : body + length + 4] = struct.pack(
        ">I", zlib.crc32(bytes(data[start : body + length]))
    )
    with Image.open(io.BytesIO(bytes(data))) as picture:
        picture.verify()  # the premise: every checksum is right

    assert "not an image we can read" in image_error(form_with("in.png", bytes(data)))


def test_a_truncated_png_is_refused():
    data = image_bytes("PNG", (64, 64), noise=True)
    assert "not an image we can read" in image_error(form_with("in.png", data[: len(data) // 2]))


def test_a_webp_whose_size_cannot_be_read_is_refused():
    data = bytearray(image_bytes("WEBP"))
    data[23:26] = b"\x00\x00\x00"  # the VP8 start code, without which the size is unknown
    assert "not an image we can read" in image_error(
        form_with("in.webp", bytes(data), "image/webp")
    )


# Through the real view: the stored name is the studio's.


def multipart(fields: dict, filename: str, content_type: str, data: bytes) -> tuple[bytes, str]:
    """A form post written by hand, so the file name reaches the server exactly as given."""
    boundary = "studio-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    ("filename", "content_type", "kind", "extension"),
    [
        ("../../x.html", "text/html", "PNG", "png"),
        ("..\\..\\evil.php", "application/x-php", "JPEG", "jpg"),
        ("a.php", "application/octet-stream", "WEBP", "webp"),
        ("%2e%2e%2fshell.svg", "image/svg+xml", "PNG", "png"),
    ],
)
def test_an_accepted_upload_is_stored_under_a_name_the_studio_picks(
    alice_client, alice, media_root, filename, content_type, kind, extension
):
    data = image_bytes(kind)
    fields = form_data(prompt="waves", seconds="auto")
    body, body_type = multipart(fields, filename, content_type, data)

    response = alice_client.post(reverse("jobs:create"), body, content_type=body_type)

    assert response.status_code == 302, response.context["form"].errors
    job = Job.objects.get(owner=alice)
    assert re.fullmatch(
        rf"uploads/\d{{4}}/\d{{2}}/input(_[A-Za-z0-9]{{7}})?\.{extension}", job.input_image.name
    )
    stored = [path for path in media_root.rglob("*") if path.is_file()]
    assert [path.read_bytes() for path in stored] == [data]
    assert all(path.resolve().is_relative_to(media_root.resolve()) for path in stored)
