"""Everything under /v1/ answers in the provider's error shape, whatever made the error.

api_view (views.py) answers the refusals a view raises. What it cannot see comes back as one of
Django's HTML pages: an unexpected exception in a view (500), a 500 raised in a middleware, the
400 for a Host not allowed, a 404 or 405 from anywhere. This middleware, near the top of
settings.MIDDLEWARE, turns any error response under /v1/ that is not already JSON into

    {"error": {"message": ..., "type": ..., "code": ...}}   with Content-Type: application/json

keeping the status and the headers that matter to a client (Allow, Retry-After). Django has
already logged the exception by then; the body never carries its text.
"""

from http import HTTPStatus

from django.http import JsonResponse

from . import errors

API_PREFIX = "/v1/"
KEPT_HEADERS = ("Allow", "Retry-After")
TYPES = {
    401: errors.UNAUTHORIZED,
    404: errors.NOT_FOUND,
    429: errors.RATE_LIMIT,
}
MESSAGES = {
    404: "Cannot {method} {path}",
    500: "The studio failed to answer this request. The error has been logged; try again later.",
}


class ApiErrorShapeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path.startswith(API_PREFIX)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return provider_shaped(request, response)
        return response


def provider_shaped(request, response) -> JsonResponse:
    """`response`, an error page, as the provider's JSON error with the same status."""
    status = response.status_code
    try:
        phrase = HTTPStatus(status).phrase
        code = phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        phrase, code = "Error", "error"
    error_type = errors.INTERNAL if status >= 500 else TYPES.get(status, errors.INVALID_REQUEST)
    message = MESSAGES.get(status, f"{phrase}.").format(method=request.method, path=request.path)
    shaped = JsonResponse(errors.error_body(message, error_type, code=code), status=status)
    for name in KEPT_HEADERS:
        if name in response:
            shaped[name] = response[name]
    return shaped
