from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from .models import Job, Notice, VideoModel


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
    list_display = ["id", "name", "pricing", "price_min", "price_max", "seconds", "accepts_image"]
    search_fields = ["id", "name"]


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
