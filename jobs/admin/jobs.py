"""Jobs, the model catalog, the ledger and the admins' notices in the admin."""

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from jobs import services
from jobs.models import (
    CostEntry,
    Job,
    Notice,
    StoredFileDeletion,
    VideoModel,
)
from jobs.security import client_ip
from jobs.templatetags.studio import bytes_size

from .base import ReadOnlyAdmin


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
    list_filter = [
        "status",
        "model",
        "created_at",
        "outcome_unknown",
        ("starred_at", admin.EmptyFieldListFilter),
        ("expired_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["owner__username", "prompt"]
    date_hierarchy = "created_at"
    list_select_related = ["owner"]
    # The provider's URL is public to anyone holding it, so not even staff see it here.
    # Files are private: link to the owner-checked view, never to a storage path.
    exclude = ["provider_url", "input_image", "video", "stored_bytes"]
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
        "provider_key",
        "video_link",
        "enqueued_at",
        "deleted_at",
        "storage",
        "starred_at",
        "expired_at",
        "expiry_warned_days",
        "created_at",
        "started_at",
        "finished_at",
    ]

    @admin.display(description="Storage", ordering="stored_bytes")
    def storage(self, job):
        if job.stored_bytes is None:
            return "not measured yet (manage.py record_storage_sizes)"
        return bytes_size(job.stored_bytes)

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

    def has_delete_permission(self, request, obj=None):
        # The next sync would bring it back; "Hidden" keeps people from choosing it, recorded.
        return False

    def save_model(self, request, obj, form, change):
        """Only the visibility is editable (here or in the list): through the service, which
        records who changed it from what to what."""
        stored = VideoModel.objects.get(pk=obj.pk)
        services.model_visibility_set(
            model=stored, visibility=obj.visibility, by=request.user, address=client_ip(request)
        )
        obj.visibility = stored.visibility


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


@admin.register(StoredFileDeletion)
class StoredFileDeletionAdmin(ReadOnlyAdmin):
    """Files that no job points at any more and that the studio has still to delete from
    storage: normally none for long. A row that stays, with an error, means the storage refuses
    (S3 away, or a key without s3:DeleteObject); the sweeper keeps trying."""

    list_display = ["name", "created_at", "attempts", "last_error"]
    date_hierarchy = "created_at"
