"""API tokens: a person's own, and the one a request's key names."""

from django.db.models import Exists, OuterRef

from jobs.models import ApiToken, Membership


def api_tokens_for_user(*, user):
    """The user's own tokens, revoked ones included, newest first (apitoken_user_created)."""
    return ApiToken.objects.filter(user=user).select_related("team").order_by("-created_at")


def api_token_for_key(*, key: str) -> ApiToken | None:
    """The live token whose key this is, with its user and team, or None: unknown, revoked, its
    user deactivated, or (for a team's token) its user no longer in the team. One query on the
    unique key_hash index."""
    member = Membership.objects.filter(team_id=OuterRef("team_id"), user_id=OuterRef("user_id"))
    token = (
        ApiToken.objects.select_related("user", "team")
        .annotate(in_team=Exists(member))
        .filter(key_hash=ApiToken.hash_key(key), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    if token.team_id is not None and not token.in_team:
        return None
    return token
