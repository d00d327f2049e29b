"""Errors in ImageRouter's shape, `{"error": {"message": ..., "type": ...}}`, with its status
codes, and the studio's own refusals mapped onto them.

The provider's types: invalid_request_error (400), unauthorized (401), rate_limit_error (429),
internal_error (a failure after work began, sent as 200). `param` names the field at fault and
`code` says which refusal it was, for scripts that branch on it; both are extra keys that a
client of the provider's shape ignores.
"""

from django.http import JsonResponse

from jobs import services
from jobs.services.tokens import TokenRateLimitedError

INVALID_REQUEST = "invalid_request_error"
UNAUTHORIZED = "unauthorized"
RATE_LIMIT = "rate_limit_error"
INTERNAL = "internal_error"
NOT_FOUND = "not_found"
INSUFFICIENT_BUDGET = "insufficient_budget"
INSUFFICIENT_STORAGE = "insufficient_storage"


def error_body(message: str, error_type: str, **extra) -> dict:
    details = {key: value for key, value in extra.items() if value is not None}
    return {"error": {"message": message, "type": error_type, **details}}


class ApiError(Exception):
    """A refusal, raised anywhere under a view and answered by api_view (views.py)."""

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        body = error_body(self.message, self.error_type, param=self.param, code=self.code)
        response = JsonResponse(body, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, INVALID_REQUEST, param=param, code=code)


def model_not_found(model: str) -> ApiError:
    """404, in the words of the provider's 400 for an unknown model, with the code of its own
    404 for one (GET /v1/models/{id}). Hidden and staff-only models are unknown to those who
    may not choose them, as on the form."""
    return ApiError(
        404,
        f"model '{model}' is not available",
        INVALID_REQUEST,
        param="model",
        code="model_not_found",
    )


def job_not_found() -> ApiError:
    return ApiError(404, "No such job for this API token.", NOT_FOUND, code="job_not_found")


def rate_limited(message: str, *, code: str, retry_after: int | None = None) -> ApiError:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return ApiError(429, message, RATE_LIMIT, code=code, headers=headers)


def token_rate_limited(exc: TokenRateLimitedError) -> ApiError:
    error = rate_limited(str(exc), code="token_rate_limit", retry_after=exc.retry_after)
    error.headers.update(
        {
            "RateLimit-Limit": str(exc.limit),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(exc.retry_after),
        }
    )
    return error


def submit_refused(exc: services.SubmitRefusedError) -> ApiError:
    """job_create's refusals, each to its status. The message is the one the form shows."""
    message = str(exc)
    if isinstance(exc, services.OverBudgetError):
        return ApiError(402, message, INSUFFICIENT_BUDGET, code="over_budget")
    if isinstance(exc, services.SubmitRateLimitedError):
        return rate_limited(message, code="submit_rate_limit", retry_after=exc.retry_after)
    if isinstance(exc, services.TooManyActiveJobsError):
        # No Retry-After: nobody knows when one of the running jobs will finish.
        return rate_limited(message, code="too_many_active_jobs")
    if isinstance(exc, services.ModelUnavailableError):
        return model_not_found(exc.model)
    if isinstance(exc, services.StorageQuotaError):
        # 403, not 507: a 5xx tells clients to try again, and only a person can free space.
        return ApiError(403, message, INSUFFICIENT_STORAGE, code="storage_quota_full")
    return ApiError(400, message, INVALID_REQUEST, code="refused")
