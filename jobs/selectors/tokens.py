"""API tokens: a person's own, and the one a request's key names."""

from django.contrib.auth import get_user_model
from django.db import connection

from jobs.models import ApiToken, Membership, Team


def api_tokens_for_user(*, user):
    """The user's own tokens, revoked ones included, newest first (apitoken_user_created)."""
    return ApiToken.objects.filter(user=user).select_related("team").order_by("-created_at")


def api_token_for_key(*, key: str) -> ApiToken | None:
    """The live token whose key this is, with its user and team, or None: unknown, revoked, its
    user deactivated, or (for a team's token) its user no longer in the team.

    Raw SQL on purpose, since every API request reads it: the ORM spent 1.8 ms of CPU building
    the one statement with its relations, and these three statements by key take 0.7 ms
    (bench/budgets.py). First the token on the unique key_hash index, with whether its user
    is active and still in its team; then the user and the team by primary key."""
    tokens = ApiToken.objects.raw(
        f"SELECT t.*, u.is_active AS user_active, EXISTS (SELECT 1"  # noqa: S608
        f" FROM {Membership._meta.db_table} m WHERE m.team_id = t.team_id"
        f" AND m.user_id = t.user_id) AS in_team FROM {ApiToken._meta.db_table} t"
        f" JOIN {get_user_model()._meta.db_table} u ON u.id = t.user_id"
        " WHERE t.key_hash = %s AND t.revoked_at IS NULL",
        [ApiToken.hash_key(key)],
    )
    token = next(iter(tokens), None)
    if token is None or not token.user_active:
        return None
    if token.team_id is not None and not token.in_team:
        return None
    user = _by_pk(get_user_model(), token.user_id)
    team = _by_pk(Team, token.team_id) if token.team_id is not None else None
    if user is None or (token.team_id is not None and team is None):
        return None  # deleted since the first statement
    token.user, token.team = user, team
    return token


def _by_pk(model, pk):
    table, column = model._meta.db_table, model._meta.pk.column
    pk = model._meta.pk.get_db_prep_value(pk, connection)  # on SQLite a UUID is 32 hex digits
    rows = model.objects.raw(f"SELECT * FROM {table} WHERE {column} = %s", [pk])  # noqa: S608
    return next(iter(rows), None)
