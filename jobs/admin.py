from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from . import services
from .models import ApiToken, Budget, BudgetChange, CostEntry, Job, Notice, VideoModel
from .services import tokens as token_services


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that are written only by the studio's services: viewable, never edited here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "owner",
        "model",
        "status",
        "cost",
        "possible_cost",
        "latency_ms",
        "created_at",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status", "model", "created_at", "outcome_unknown"]
    search_fields = ["owner__username", "prompt"]
    date_hierarchy = "created_at"
    list_select_related = ["owner"]
    # The provider's URL is public to anyone holding it, so not even staff see it here.
    # Files are private: link to the owner-checked view, never to a storage path.
    exclude = ["provider_url", "input_image", "video"]
    readonly_fields = [
        "id",
        "owner",
        "prompt",
        "model",
        "size",
        "seconds",
        "response_format",
        "status",
        "attempt",
        "not_before",
        "error",
        "outcome_unknown",
        "cost",
        "possible_cost",
        "latency_ms",
        "video_link",
        "enqueued_at",
        "deleted_at",
        "created_at",
        "started_at",
        "finished_at",
    ]

    @admin.display(description="Video")
    def video_link(self, job):
        if not job.video:
            return "—"
        return format_html('<a href="{}">Play</a>', reverse("jobs:video", args=[job.pk]))

    def has_add_permission(self, request):
        return False


@admin.register(VideoModel)
class VideoModelAdmin(admin.ModelAdmin):
    """The catalog comes from the provider; admins decide only who may choose each model."""

    list_display = ["id", "name", "pricing", "price_min", "price_max", "seconds", "accepts_image",
                    "visibility"]  # fmt: skip
    list_editable = ["visibility"]
    list_filter = ["visibility", "accepts_image", "pricing"]
    search_fields = ["id", "name"]
    fields = ["id", "name", "visibility", "pricing", "price_min", "price_average", "price_max",
              "seconds", "default_seconds", "sizes", "accepts_image", "synced_at"]  # fmt: skip
    readonly_fields = [f for f in fields if f != "visibility"]

    def has_add_permission(self, request):
        return False  # models come from the provider's catalog (manage.py sync_models)


@admin.register(Notice)
class NoticeAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "message", "resolved_at"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter)]
    readonly_fields = ["kind", "message", "job", "created_at"]
    actions = ["mark_resolved"]

    @admin.action(description="Mark as resolved")
    def mark_resolved(self, request, queryset):
        queryset.filter(resolved_at__isnull=True).update(resolved_at=timezone.now())

    def has_add_permission(self, request):
        return False


class CatalogModelFilter(admin.SimpleListFilter):
    """Models from the catalog: listing the ledger's distinct models would scan every entry."""

    title = "model"
    parameter_name = "model"

    def lookups(self, request, model_admin):
        return [
            (model_id, model_id) for model_id in VideoModel.objects.values_list("id", flat=True)
        ]

    def queryset(self, request, queryset):
        return queryset.filter(model=self.value()) if self.value() else queryset


@admin.register(CostEntry)
class CostEntryAdmin(ReadOnlyAdmin):
    """The ledger, read-only: entries change only through services (a job ending, or an admin's
    verdict on the reconciliation page)."""

    list_display = [
        "created_at",
        "user",
        "model",
        "outcome",
        "cost",
        "possible_cost",
        "reconciliation",
        "job_link",
    ]
    list_filter = ["outcome", "reconciliation", CatalogModelFilter, "created_at"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    date_hierarchy = "created_at"
    # The changelist would otherwise count the whole ledger twice on every page.
    show_full_result_count = False
    fields = readonly_fields = [
        "job_link",
        "user",
        "model",
        "outcome",
        "cost",
        "possible_cost",
        "reconciliation",
        "reconciled_by",
        "reconciled_at",
        "created_at",
    ]

    @admin.display(description="Job")
    def job_link(self, entry):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:jobs_job_change", args=[entry.job_id]),
            entry.job_id,
        )


class BudgetForm(forms.ModelForm):
    class Meta:
        model = Budget
        fields = ["user", "monthly_limit"]

    def clean_monthly_limit(self):
        limit = self.cleaned_data["monthly_limit"]
        if limit is not None and limit < 0:
            raise forms.ValidationError("A budget cannot be negative. Leave it empty for no limit.")
        return limit


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    """Monthly limits. Every save goes through services.budget_set, which records who changed
    the limit, when, from what and to what."""

    form = BudgetForm
    list_display = ["user", "limit_display"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    ordering = ["user__username"]
    readonly_fields = ["history"]

    def get_fields(self, request, obj=None):
        return ["user", "monthly_limit", "history"] if obj else ["user", "monthly_limit"]

    def get_readonly_fields(self, request, obj=None):
        # The user is fixed once the budget exists; only the limit changes.
        return ["user", "history"] if obj else []

    @admin.display(description="Monthly limit", ordering="monthly_limit")
    def limit_display(self, budget):
        return "no limit" if budget.monthly_limit is None else f"${budget.monthly_limit}"

    @admin.display(description="Changes")
    def history(self, budget):
        changes = (
            BudgetChange.objects.filter(user_id=budget.user_id)
            .select_related("changed_by")
            .order_by("-changed_at", "-pk")[:50]
        )
        if not changes:
            return "No changes recorded."
        return format_html(
            "<table><thead><tr><th>When (UTC)</th><th>By</th><th>From</th><th>To</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        f"{change.changed_at:%Y-%m-%d %H:%M}",
                        change.changed_by or "—",
                        _limit(change.old_limit),
                        _limit(change.new_limit),
                    )
                    for change in changes
                ),
            ),
        )

    def save_model(self, request, obj, form, change):
        budget = services.budget_set(
            user=obj.user, monthly_limit=form.cleaned_data["monthly_limit"], changed_by=request.user
        )
        obj.pk = budget.pk
        obj.monthly_limit = budget.monthly_limit


def _limit(value) -> str:
    return "no limit" if value is None else f"${value}"


@admin.register(BudgetChange)
class BudgetChangeAdmin(ReadOnlyAdmin):
    """The record of budget changes, read-only: it is written by services.budget_set."""

    list_display = ["changed_at", "user", "old_display", "new_display", "changed_by"]
    list_select_related = ["user", "changed_by"]
    search_fields = ["user__username", "changed_by__username"]
    date_hierarchy = "changed_at"

    @admin.display(description="Old limit", ordering="old_limit")
    def old_display(self, change):
        return _limit(change.old_limit)

    @admin.display(description="New limit", ordering="new_limit")
    def new_display(self, change):
        return _limit(change.new_limit)


class BudgetChangeInline(admin.TabularInline):
    """A user's budget history on their user page, read-only."""

    model = BudgetChange
    fk_name = "user"
    fields = readonly_fields = ["changed_at", "changed_by", "old_limit", "new_limit"]
    extra = 0
    can_delete = False
    verbose_name_plural = "budget changes"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Personal API tokens, made by their owners on the API tokens page (a key is shown only
    there, once). Admins can see them and revoke them, e.g. for a script that misbehaves."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "name", "prefix"]
    list_select_related = ["user"]
    exclude = ["key_hash"]
    actions = ["revoke"]

    def has_revoke_permission(self, request):
        """Revoking is a change, though the form to change a token is never shown."""
        return request.user.has_perm("jobs.change_apitoken")

    @admin.action(description="Revoke the selected tokens", permissions=["revoke"])
    def revoke(self, request, queryset):
        revoked = sum(
            token_services.token_revoke(user=token.user, token_id=token.pk) for token in queryset
        )
        self.message_user(request, f"Revoked {revoked} token{'s' if revoked != 1 else ''}.")


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class StudioUserAdmin(UserAdmin):
    """Django's user admin, with each user's monthly budget and its history."""

    list_display = [*UserAdmin.list_display, "monthly_budget"]
    list_select_related = ["budget"]
    inlines = [*UserAdmin.inlines, BudgetChangeInline]

    @admin.display(description="Monthly budget")
    def monthly_budget(self, user):
        budget = getattr(user, "budget", None)
        if budget is None:
            return f"default ({_limit(settings.DEFAULT_MONTHLY_BUDGET)})"
        link = reverse("admin:jobs_budget_change", args=[budget.pk])
        return format_html('<a href="{}">{}</a>', link, _limit(budget.monthly_limit))
