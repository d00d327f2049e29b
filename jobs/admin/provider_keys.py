"""The provider keys the studio minted, read-only: what each is for, its cap, its expiry and
whether it is retired. Never its secret, encrypted or not."""

from django.contrib import admin

from jobs.models import ProviderKey

from .base import ReadOnlyAdmin


@admin.register(ProviderKey)
class ProviderKeyAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "team",
        "user",
        "limit_display",
        "period",
        "window_start",
        "expires_at",
        "created_at",
        "retired_at",
    ]
    list_filter = [("retired_at", admin.EmptyFieldListFilter), "period", "status"]
    list_select_related = ["team", "user"]
    search_fields = ["name", "team__name", "user__username", "provider_id"]
    date_hierarchy = "created_at"
    # The secret and the mint's claim are the studio's alone.
    fields = [
        "name",
        "team",
        "user",
        "status",
        "provider_id",
        "limit_display",
        "period",
        "budget_limit",
        "budget_period",
        "window_start",
        "window_end",
        "expires_at",
        "created_at",
        "minted_at",
        "last_used_at",
        "retired_at",
        "retired_because",
    ]
    readonly_fields = fields

    @admin.display(description="Spend limit", ordering="spend_limit")
    def limit_display(self, key):
        return key.limit_words
