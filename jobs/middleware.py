"""Refuse request bodies larger than REQUEST_MAX_BYTES with a page that says so, and requests
whose URL or cookies hold a NUL character."""

from django.conf import settings
from django.http import HttpResponseBadRequest, JsonResponse
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


class NulCharacterMiddleware:
    """Refuse with 400 a request whose path, query string or cookies hold a NUL character.

    No field of the studio's takes one, and PostgreSQL cannot store one in text, so a value
    holding one that reached a query (a share link's token, the review's filters, a session
    cookie) was an error from the database, a 500. Form fields are refused by Django's own
    validator; JSON strings by jobs/api/jsonbody.py. This one check covers everything read from
    the URL and the cookies, before anything reads them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            return _nul_refused()
        if any("\x00" in value for value in request.COOKIES.values()):
            return _nul_refused()
        return self.get_response(request)


def _nul_refused():
    return HttpResponseBadRequest(
        "A NUL character is not allowed in a URL or a cookie.", content_type="text/plain"
    )
