"""Reading a generation request: JSON or multipart fields, and the input images.

The provider takes images as uploaded files (`image` or `image[]`), URL strings or data URIs.
URLs are fetched only from loopback addresses: the simulator must never reach the internet,
and tests serve their images locally.
"""

import base64
import binascii
import io
import json
import re
import urllib.error
import urllib.request
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import urlsplit

from PIL import Image, UnidentifiedImageError

from .web import is_loopback

MAX_IMAGES = 6
MAX_IMAGE_BYTES = 25 * 1024 * 1024  # the provider's multer limit per file
IMAGE_FIELDS = ("image", "image[]")
INDEXED_FIELD = re.compile(r"^image\[\d+\]$")


class FormError(ValueError):
    """A request the provider would refuse with 400 invalid_request_error."""


def parse_body(content_type: str, body: bytes) -> tuple[dict, list]:
    """Return (fields, image sources). A source is bytes (an upload) or a str (URL/data URI)."""
    if content_type.lower().startswith("multipart/form-data"):
        return _parse_multipart(content_type, body)
    return _parse_json(body)


def _parse_json(body: bytes) -> tuple[dict, list]:
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormError(f"Malformed JSON in request body: {exc}") from None
    if not isinstance(data, dict):
        raise FormError("The request body must be a JSON object")
    images = []
    for name in IMAGE_FIELDS:
        value = data.pop(name, None)
        if isinstance(value, str):
            images.append(value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            images.extend(value)
        elif value is not None:
            raise FormError(f"'{name}' must be a URL or a data URI string, or a list of them")
    if any(INDEXED_FIELD.match(name) for name in data):
        raise FormError("File upload error: Unexpected field")
    if len(images) > MAX_IMAGES:
        raise FormError(f"Maximum of {MAX_IMAGES} images can be uploaded")
    return data, images


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict, list]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise FormError("Malformed multipart/form-data body")
    fields, images = {}, []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        is_file = part.get_filename() is not None
        if INDEXED_FIELD.match(name) or (is_file and name not in IMAGE_FIELDS):
            # multer's answer to a file field it wasn't told about.
            raise FormError("File upload error: Unexpected field")
        if name in IMAGE_FIELDS:
            if is_file and len(payload) > MAX_IMAGE_BYTES:
                raise FormError("File upload error: File too large")
            images.append(payload if is_file else payload.decode("utf-8", "replace").strip())
        else:
            fields[name] = payload.decode("utf-8", "replace")
    if len(images) > MAX_IMAGES:
        raise FormError("File upload error: Unexpected field")
    return fields, images


def load_image(source: bytes | str) -> Image.Image:
    """Open one image source with Pillow, fetching loopback URLs and decoding data URIs."""
    if isinstance(source, str):
        source = _data_uri_bytes(source) if source.startswith("data:") else _fetch(source)
    try:
        image = Image.open(io.BytesIO(source))
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise FormError(f"The input image could not be read: {exc}") from None
    return image


def _data_uri_bytes(uri: str) -> bytes:
    header, sep, data = uri.partition(",")
    if not sep or not header.endswith(";base64"):
        raise FormError("Image data URIs must look like data:image/png;base64,...")
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        raise FormError("The image data URI is not valid base64") from None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could lead off the machine; the provider follows them, the simulator won't.
    def redirect_request(self, *args, **kwargs):
        return None


# No proxies from the environment either: loopback means this machine.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def _fetch(url: str) -> bytes:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FormError(f"Failed to fetch image from '{url[:200]}': not a URL or a data URI")
    if parts.hostname != "localhost" and not is_loopback(parts.hostname):
        raise FormError(
            f"Failed to fetch image from URL '{url}': the simulator only fetches images from "
            "loopback addresses"
        )
    try:
        with _opener.open(url, timeout=10) as response:
            data = response.read(MAX_IMAGE_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FormError(f"Failed to fetch image from URL '{url}': {exc}") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise FormError(f"Failed to fetch image from URL '{url}': larger than 25 MB")
    return data
