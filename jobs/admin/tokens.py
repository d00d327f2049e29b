"""API tokens in the admin: staff see them and revoke them, never their keys or secrets."""

from django.contrib import admin

from jobs.models import (
    ApiToken,
)
from jobs.security import client_ip
from jobs.services import tokens as token_services

from .base import ReadOnlyAdmin


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Personal API tokens, made by their owners on the API tokens page (a key is shown only
    there, once). Admins can see them and revoke them, e.g. for a script that misbehaves."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "name", "prefix"]
    list_select_related = ["user"]
    exclude = ["key_hash", "webhook_secret"]
    actions = ["revoke"]

    def has_revoke_permission(self, request):
        """Revoking is a change, though the form to change a token is never shown."""
        return request.user.has_perm("jobs.change_apitoken")

    @admin.action(description="Revoke the selected tokens", permissions=["revoke"])
    def revoke(self, request, queryset):
        revoked = sum(
            token_services.token_revoke(
                user=token.user, token_id=token.pk, by=request.user, address=client_ip(request)
            )
            for token in queryset
        )
        self.message_user(request, f"Revoked {revoked} token{'s' if revoked != 1 else ''}.")
