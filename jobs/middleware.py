"""Refuse request bodies larger than REQUEST_MAX_BYTES with a page that says so."""

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render

# Up to this many bytes of an oversized body are read and dropped before answering, so the
# browser, still sending, reads our page instead of a connection reset. Past it, answer at once.
DRAIN_MAX_BYTES = 64 * 1024 * 1024
DRAIN_CHUNK_BYTES = 256 * 1024


class RequestBodyLimitMiddleware:
    """Django limits form fields in memory, but not the size of uploaded files. Without this, a
    client could send gigabytes to the upload form, which Django would spool to disk first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.REQUEST_MAX_BYTES:
            return self.refuse(request, length)
        return self.get_response(request)

    def refuse(self, request, length: int):
        if length <= DRAIN_MAX_BYTES:
            stream = request.META["wsgi.input"]
            left = length
            while left > 0:
                chunk = stream.read(min(DRAIN_CHUNK_BYTES, left))
                if not chunk:
                    break
                left -= len(chunk)
        if request.path.startswith("/v1/"):
            # The API (jobs/api/) answers in the provider's error shape, not with a page.
            return JsonResponse(
                {
                    "error": {
                        "message": "File upload error: File too large. The most this studio "
                        f"accepts is {_megabytes(settings.REQUEST_MAX_BYTES)} MB.",
                        "type": "invalid_request_error",
                        "code": "request_too_large",
                    }
                },
                status=413,
            )
        response = render(
            request,
            "413.html",
            {
                "sent_mb": _megabytes(length),
                "limit_mb": _megabytes(settings.REQUEST_MAX_BYTES),
                "upload_mb": _megabytes(settings.UPLOAD_MAX_BYTES),
            },
            status=413,
        )
        return response


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0")
