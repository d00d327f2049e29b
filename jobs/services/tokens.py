"""Personal API tokens: made, revoked and marked as used here, never stored in the clear."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from jobs.models import ApiToken

from .limits import count_in_minute

# Recognisable in a script, a log or a leak scanner's rules, and never confused with an
# ImageRouter key (64 characters, no prefix).
KEY_PREFIX = "vst_"
# How much of the key the token list shows: the marker and 8 random characters. 48 of the
# key's 256 random bits; the other 208 stay secret.
SHOWN_PREFIX_CHARS = len(KEY_PREFIX) + 8
# last_used_at is for people ("used 3 minutes ago"): writing it at most once a minute spares
# a busy script's every request an UPDATE.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenRateLimitedError(Exception):
    def __init__(self, *, limit: int, retry_after: int):
        self.limit = limit
        self.retry_after = retry_after
        super().__init__(
            f"This API token has made {limit} requests in the last minute, the most this studio "
            f"allows. Try again in {retry_after} second{'s' if retry_after != 1 else ''}."
        )


def token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """A new token for `user`, and its key, which the caller shows once and forgets."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name.strip(),
        key_hash=ApiToken.hash_key(key),
        prefix=key[:SHOWN_PREFIX_CHARS],
    )
    return token, key


def token_revoke(*, user, token_id) -> bool:
    """Revoke one of `user`'s own tokens, at once: the next request with it gets 401. False when
    it is not theirs, does not exist, or was revoked already (one conditional UPDATE)."""
    revoked = ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    return bool(revoked)


def token_mark_used(*, token: ApiToken) -> None:
    """Record that the token was just used, unless that was recorded less than a minute ago.
    Conditional on the stored value, so concurrent requests write it once."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_RESOLUTION:
        return
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now)
    token.last_used_at = now


def token_rate_check(*, token: ApiToken) -> None:
    """Count this request against the token's GATEWAY_REQUESTS_PER_MINUTE, in the same shared
    one-minute window as the submit limit; raise when over. Refused requests count too:
    hammering does not help."""
    limit = settings.GATEWAY_REQUESTS_PER_MINUTE
    retry_after = count_in_minute(f"api-requests:{token.pk}", limit)
    if retry_after is not None:
        raise TokenRateLimitedError(limit=limit, retry_after=retry_after)
