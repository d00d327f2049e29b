"""API tokens: a person's own, and the one a request's key names."""

from jobs.models import ApiToken


def api_tokens_for_user(*, user):
    """The user's own tokens, revoked ones included, newest first (apitoken_user_created)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def api_token_for_key(*, key: str) -> ApiToken | None:
    """The live token whose key this is, with its user, or None: unknown, revoked, or its user
    deactivated. One query on the unique key_hash index."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=ApiToken.hash_key(key), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    return token
