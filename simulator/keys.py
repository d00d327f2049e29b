"""POST /v1/api-keys: a management key mints a normal key of the same account.

Faithful to the provider's documentation (api-reference/management-api-keys):
- only a management key may call it; a normal, expired or missing key gets 401;
- `name` is required, a string of at most 200 characters;
- `spend_limit` is a USD number or null; `spend_limit_period` is "day", "week", "month" or
  null, and needs `spend_limit`; null means a lifetime cap;
- `expires_at` is an ISO 8601 timestamp in the future, or null for a key that never expires;
- the new key's secret (64 characters) is in the answer, once only.

The documentation does not show the answer's body. The simulator answers 201 with
`{"id", "name", "key", "spend_limit", "spend_limit_period", "expires_at", "created_at"}`:
`id` is the `api_key_id` that GET /v1/credits?by_api_key=true reports the key under.
"""

import json
import math

from .catalog import usd_to_units
from .state import PERIODS, parse_timestamp, stamp
from .web import Request, error_response, invalid_request, json_response

MAX_NAME = 200


class KeyFormError(ValueError):
    pass


def handle(state, request: Request):
    api_key = request.bearer_token()
    if api_key is None:
        return error_response(401, "Authorization header is required", "unauthorized")
    if not state.is_management_key(api_key):
        return error_response(
            401, "A management API key is required to create API keys", "unauthorized"
        )
    try:
        fields = _fields(request.body(), now=state.now())
    except KeyFormError as exc:
        return invalid_request(str(exc))
    secret, usage = state.mint(**fields)
    return json_response(
        201,
        {
            "id": usage.api_key_id,
            "name": usage.api_key_name,
            "key": secret,
            "spend_limit": _number(usage.spend_limit_units),
            "spend_limit_period": usage.spend_limit_period,
            "expires_at": stamp(usage.expires_at),
            "created_at": usage.created_at,
        },
    )


def _fields(body: bytes, *, now) -> dict:
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KeyFormError(f"Malformed JSON in request body: {exc}") from None
    if not isinstance(data, dict):
        raise KeyFormError("The request body must be a JSON object")

    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise KeyFormError("'name' is a required parameter")
    if len(name) > MAX_NAME:
        raise KeyFormError(f"'name' must be at most {MAX_NAME} characters")

    limit = data.get("spend_limit")
    if limit is not None:
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int | float)
            or not math.isfinite(limit)
        ):
            raise KeyFormError("'spend_limit' must be a number (USD) or null")
        if limit < 0:
            raise KeyFormError("'spend_limit' must be 0 or more")

    period = data.get("spend_limit_period")
    if period is not None and period not in PERIODS:
        raise KeyFormError("'spend_limit_period' must be 'day', 'week', 'month' or null")
    if period is not None and limit is None:
        raise KeyFormError("'spend_limit_period' requires 'spend_limit' to be set")

    expires = data.get("expires_at")
    expires_at = None
    if expires is not None:
        expires_at = parse_timestamp(expires)
        if expires_at is None:
            raise KeyFormError("'expires_at' must be an ISO 8601 timestamp or null")
        if expires_at <= now:
            raise KeyFormError("'expires_at' must be in the future")

    return {
        "name": name,
        "spend_limit_units": None if limit is None else usd_to_units(limit),
        "period": period,
        "expires_at": expires_at,
    }


def _number(units: int | None):
    if units is None:
        return None
    value = units / 10_000
    return int(value) if value.is_integer() else value
