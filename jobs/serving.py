"""Serve a private stored file with HTTP Range support (Safari needs it; seeking needs it).

Only views that have already checked ownership call `file_response`. Videos and uploads have no
public URL: MEDIA_URL is not routed, and whitenoise serves only static/.

With `settings.MEDIA_X_ACCEL_PREFIX` set (say "/protected/"), Django sends no bytes: it answers
with an empty body and `X-Accel-Redirect: /protected/<storage name>`, and nginx serves the file,
Range requests included, from an internal location that maps the prefix onto MEDIA_ROOT:

    location /protected/ {
        internal;
        alias /srv/videostudio/media/;
        # nginx keeps Content-Type, Content-Disposition, Cache-Control and Accept-Ranges from
        # Django's answer on an X-Accel-Redirect, but drops every other header.
        add_header X-Content-Type-Options nosniff always;
    }

`internal` matters: without it anyone could fetch /protected/<name> and skip the check.

On S3 (STORAGE_BACKEND=s3) Django sends no bytes either: it answers 302 to a presigned URL for
the object, made after the check and short-lived (S3_URL_EXPIRY), that names the Content-Type
and, for a download, the Content-Disposition the bucket must answer with. The bucket serves the
bytes and the Range requests itself. The redirect is never cached: a proxy that kept it would
hand the next person a working link to someone else's video.
"""

import os
import re
import sys
from urllib.parse import quote

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import content_disposition_header

from jobs.numbers import parse_whole_number

CHUNK_BYTES = 64 * 1024
RANGE_PATTERN = re.compile(r"^bytes=(\d*)-(\d*)$")
CACHE_CONTROL = "private, max-age=3600"
REDIRECT_CACHE_CONTROL = "private, no-store"

# The input images a user may upload (jobs.image_checks.IMAGE_FORMATS), by the stored file's extension.
# Anything else is not served at all, so an upload can never come back as HTML or script.
IMAGE_CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}


def image_content_type(name: str) -> str | None:
    """The Content-Type for a stored input image, or None if it is not one we serve."""
    return IMAGE_CONTENT_TYPES.get(os.path.splitext(name)[1].lower())


def file_response(request, field_file, *, content_type: str, download_name: str | None = None):
    """The stored file, whole (200) or one byte range (206), or 416 for a range past its end.

    A header this does not understand, such as several ranges, is ignored and the whole file
    served, as RFC 7233 allows. With MEDIA_X_ACCEL_PREFIX set, nginx does all of this instead;
    on S3, the bucket does, behind a redirect to a presigned URL.
    """
    if _is_s3(field_file.storage):
        return _presigned_redirect(field_file, content_type, download_name)
    if settings.MEDIA_X_ACCEL_PREFIX:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.MEDIA_X_ACCEL_PREFIX + quote(field_file.name)
        return _with_private_headers(response, download_name)

    try:
        size = field_file.size
    except FileNotFoundError:
        raise Http404("The file is missing from storage.") from None
    byte_range = _requested_range(request.headers.get("Range", ""), size)
    if byte_range and byte_range[0] >= size:  # past the end; also any range of an empty file
        response = HttpResponse(status=416, content_type=content_type)
        response["Content-Range"] = f"bytes */{size}"
        return _with_private_headers(response, None)

    start, end = byte_range or (0, size - 1)
    length = end - start + 1
    # HEAD (players and proxies ask it first) gets the same status and headers, and no body.
    body = () if request.method == "HEAD" else _read_range(field_file, start, length)
    response = StreamingHttpResponse(
        body,
        status=206 if byte_range else 200,
        content_type=content_type,
    )
    response["Content-Length"] = str(length)
    if byte_range:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return _with_private_headers(response, download_name)


def _is_s3(storage) -> bool:
    """Whether the file is in an S3 bucket, without importing boto3 where it is not: that costs
    34 MB and 0.2 s in every web process. Setting up an S3 storage imports its module."""
    storage_class = storage.__class__  # sets up the lazy default storage, and imports its backend
    s3 = sys.modules.get("storages.backends.s3")
    return s3 is not None and issubclass(storage_class, s3.S3Storage)


def _presigned_redirect(field_file, content_type: str, download_name: str | None):
    """302 to a short-lived signed URL for the object. The headers the bucket must answer with
    are part of what is signed: the stored object's own Content-Type came from the uploader's
    browser, so it is never trusted."""
    parameters = {"ResponseContentType": content_type}
    if download_name:
        parameters["ResponseContentDisposition"] = content_disposition_header(True, download_name)
    response = HttpResponseRedirect(field_file.storage.url(field_file.name, parameters=parameters))
    response["Cache-Control"] = REDIRECT_CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _requested_range(header: str, size: int):
    """(start, end), inclusive, for a single range; None for the whole file: no header, several
    ranges, or one that is not valid syntax. A start at or past `size` cannot be satisfied."""
    match = RANGE_PATTERN.match(header.strip())
    if not match or not (match[1] or match[2]):
        return None
    first, last = (parse_whole_number(part) if part else None for part in match.groups())
    if (match[1] and first is None) or (match[2] and last is None):
        return None  # not ASCII digits, or more than any file holds: ignored as invalid
    if match[1]:
        start = first
        if match[2] and last < start:
            return None  # RFC 7233 2.1: syntactically invalid, so the header is ignored
        end = min(last, size - 1) if match[2] else size - 1
    else:  # a suffix: the last N bytes
        start, end = max(size - last, 0), size - 1  # "-0" asks for nothing: start == size
    return start, end


def _with_private_headers(response, download_name):
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    if download_name:
        response["Content-Disposition"] = content_disposition_header(True, download_name)
    return response


def _read_range(field_file, start: int, length: int):
    with field_file.storage.open(field_file.name, "rb") as handle:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(CHUNK_BYTES, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
