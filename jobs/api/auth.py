"""Who is asking: the personal API token in `Authorization: Bearer vst_...`, and its rate limit.

No cookie and no session count here: a browser that is signed in to the studio gets 401 from
the API like anyone else without a token, so no page on another site can spend through it (and
the views can be CSRF-exempt).
"""

from jobs import selectors
from jobs.models import ApiToken
from jobs.services import tokens

from .errors import UNAUTHORIZED, ApiError, token_rate_limited

WWW_AUTHENTICATE = 'Bearer realm="VideoStudio API"'


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, UNAUTHORIZED, headers={"WWW-Authenticate": WWW_AUTHENTICATE})


def authenticate(request) -> ApiToken:
    """The live token the request carries, counted against its rate limit; else ApiError.

    1. Read `Authorization: Bearer <key>`: missing or malformed is 401.
    2. Look the key up by its hash: unknown, revoked, or its user deactivated is 401. A revoked
       token fails on the very next request, since nothing caches it.
    3. Count the request against the token's per-minute limit (429 with Retry-After).
    4. Note when it was last used, at most once a minute.
    """
    header = request.headers.get("Authorization", "").strip()
    if not header:
        raise unauthorized("Authorization header is required")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise unauthorized("Send your studio API token as 'Authorization: Bearer vst_...'.")
    token = selectors.api_token_for_key(key=key)
    if token is None:
        raise unauthorized(
            "Invalid API token: it is unknown or was revoked. Create one on the studio's "
            "API tokens page."
        )
    try:
        tokens.token_rate_check(token=token)
    except tokens.TokenRateLimitedError as exc:
        raise token_rate_limited(exc) from None
    tokens.token_mark_used(token=token)
    return token
