"""API tokens: made (for the personal space or one team, with a budget of their own if asked),
revoked and marked as used here, never stored in the clear."""

import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs import webhooks
from jobs.models import ApiToken, AuditEvent, Budget, audit_quote

from .audit import audit_record
from .budgets import budget_set
from .limits import charge_check, count_in_minute

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


@transaction.atomic
def token_create(
    *,
    user,
    name: str,
    team=None,
    limit: Decimal | None = None,
    period: str | None = None,
    address: str | None = None,
    webhook_url: str = "",
) -> tuple[ApiToken, str]:
    """A new token for `user` whose jobs are charged to `team` (None: their personal space), and
    its key, which the caller shows once and forgets. Its webhook signing secret is made with it
    (token.webhook_secret, shown once beside the key); `webhook_url` is its default webhook,
    checked by the caller (webhooks.url_check).

    1. Refuse a team the user is not in, or a personal token where every job must be charged
       to a team (ChargeRefusedError, as job_create would refuse its jobs).
    2. Save the token with only a hash of its key.
    3. With a `limit`, give it a budget of its own (audited, as every budget change is).
    """
    charge_check(user=user, team=team)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        team=team,
        name=name.strip(),
        key_hash=ApiToken.hash_key(key),
        prefix=key[:SHOWN_PREFIX_CHARS],
        webhook_url=webhook_url,
        webhook_secret=webhooks.secret_new(),
    )
    if limit is not None:
        budget_set(
            level=Budget.Level.TOKEN,
            token=token,
            limit=limit,
            period=period,
            changed_by=user,
            address=address,
        )
    return token, key


def token_budget_set(
    *, user, token_id, limit: Decimal | None, period: str | None, address: str | None = None
) -> Budget | None:
    """Set the budget of one of `user`'s own live tokens (None: no limit of its own), audited
    by budget_set. None when the token is not theirs or was revoked."""
    token = ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).first()
    if token is None:
        return None
    return budget_set(
        level=Budget.Level.TOKEN,
        token=token,
        limit=limit,
        period=period,
        changed_by=user,
        address=address,
    )


@transaction.atomic
def token_revoke(*, user, token_id, by=None, address: str | None = None) -> bool:
    """Revoke one of `user`'s tokens, at once: the next request with it gets 401. False when it
    is not theirs, does not exist, or was revoked already.

    1. One conditional UPDATE on the live token.
    2. If it changed the row, record who revoked it (`by`: the owner on their tokens page, or
       staff in the admin; the owner if not given) and from where.
    """
    now = timezone.now()
    revoked = ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
        revoked_at=now
    )
    if not revoked:
        return False
    token = ApiToken.objects.select_related("team").get(pk=token_id)
    by = by if by is not None else user
    audit_record(
        actor=by,
        action=AuditEvent.Action.TOKEN_REVOKED,
        team=token.team,
        user=user,
        summary=f"Revoked {{user}}'s API token {audit_quote(token.prefix)}…"
        + (" (by its owner)" if by.pk == user.pk else ""),
        before={"revoked_at": None},
        after={"revoked_at": now.isoformat()},
        address=address,
    )
    return True


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


def token_webhook_set(*, user, token_id, url: str) -> ApiToken | None:
    """Set (or, with "", clear) the default webhook URL of one of `user`'s own live tokens,
    checked by the caller. A token made before webhooks existed gets its signing secret now
    (the caller shows it once). None when the token is not theirs or was revoked."""
    token = ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).first()
    if token is None:
        return None
    token.webhook_url = url
    fields = ["webhook_url"]
    if not token.webhook_secret:
        token.webhook_secret = webhooks.secret_new()
        fields.append("webhook_secret")
    token.save(update_fields=fields)
    return token


def token_secret_rotate(*, user, token_id) -> ApiToken | None:
    """A new webhook signing secret for one of `user`'s own live tokens (the caller shows it
    once). Every delivery from now on, retries included, is signed with it. None when the
    token is not theirs or was revoked."""
    secret = webhooks.secret_new()
    changed = ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
        webhook_secret=secret
    )
    if not changed:
        return None
    return ApiToken.objects.get(pk=token_id)
