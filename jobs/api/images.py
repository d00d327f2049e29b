"""An input image given as a string, as the provider accepts it: a data URI or a URL.

Either becomes an uploaded file for JobForm.clean_image, which checks it exactly as it checks a
browser's upload. A URL is fetched by the studio, so it must not become a way into the studio's
own network (server-side request forgery):
- only http and https, no redirects, no proxy from the environment;
- the host name is resolved once, every address it has must be public (not loopback, private,
  link-local such as cloud metadata, or reserved) unless GATEWAY_IMAGE_URLS_PRIVATE says
  otherwise, and the connection goes to the address that was checked, so a second DNS answer
  cannot point it elsewhere;
- at most UPLOAD_MAX_BYTES + 1 bytes are read (the form says the file is too big), within
  FETCH_DEADLINE_SECONDS in all.
"""

import base64
import binascii
import time
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.security import (
    HostNotFoundError,
    PrivateAddressError,
    pinned_pool,
    public_address,
    request_path,
)

from .errors import invalid

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 10
FETCH_DEADLINE_SECONDS = 30
CHUNK_BYTES = 64 * 1024


def image_from_string(value: str, *, field: str) -> SimpleUploadedFile:
    """The image a data URI or URL names, as an upload; ApiError (400) naming `field` if not."""
    value = value.strip()
    if value[:5].lower() == "data:":
        return _from_data_uri(value, field=field)
    return _from_url(value, field=field)


def _from_data_uri(uri: str, *, field: str) -> SimpleUploadedFile:
    header, comma, data = uri.partition(",")
    if not comma or not header.lower().endswith(";base64"):
        raise invalid(
            f"'{field}': an image data URI must look like data:image/png;base64,...", param=field
        )
    try:
        # Some tools wrap long base64 in lines; the line breaks are not part of the data.
        content = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"'{field}': the image data URI is not valid base64", param=field) from None
    # The form compares this type with what the bytes hold, as it does a browser's.
    content_type = header[5:].rsplit(";", 1)[0].strip().lower() or None
    return SimpleUploadedFile("image", content, content_type=content_type)


def _from_url(url: str, *, field: str) -> SimpleUploadedFile:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise invalid(
            f"'{field}' must be an uploaded file, an http(s) URL or a data URI", param=field
        )
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise invalid(f"'{field}': the image URL has an invalid port", param=field) from None
    address = _checked_address(parts.hostname, port, field=field)
    content = _download(parts, address, port, field=field)
    return SimpleUploadedFile("image", content)


def _checked_address(host: str, port: int, *, field: str) -> str:
    """The address to connect to, after checking every address the name has."""
    try:
        return public_address(host, port)
    except HostNotFoundError:
        raise invalid(
            f"'{field}': the image URL's host {host!r} was not found", param=field
        ) from None
    except PrivateAddressError:
        raise invalid(
            f"'{field}': the studio fetches images only from public addresses, and "
            f"{host} is not one. Upload the image, or send it as a data URI.",
            param=field,
        ) from None


def _download(parts, address: str, port: int, *, field: str) -> bytes:
    limit = settings.UPLOAD_MAX_BYTES + 1
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS)
    pool = pinned_pool(parts, address, port, timeout=timeout)
    path = request_path(parts)
    deadline = time.monotonic() + FETCH_DEADLINE_SECONDS
    try:
        response = pool.urlopen(
            "GET",
            path,
            headers={"Host": parts.netloc.rsplit("@", 1)[-1], "Accept": "image/*"},
            redirect=False,
            preload_content=False,
        )
        try:
            if response.status != 200:
                raise invalid(
                    f"'{field}': fetching the image URL gave HTTP {response.status}", param=field
                )
            content = bytearray()
            for chunk in response.stream(CHUNK_BYTES):
                content += chunk
                if len(content) >= limit or time.monotonic() > deadline:
                    break
            if time.monotonic() > deadline:
                raise invalid(f"'{field}': the image URL took too long to answer", param=field)
            return bytes(content[:limit])
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise invalid(
            f"'{field}': the image URL could not be fetched ({exc})", param=field
        ) from None
    finally:
        pool.close()
