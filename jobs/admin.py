from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .models import Job, VideoModel


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "owner",
        "model",
        "status",
        "cost",
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
        "latency_ms",
        "video_link",
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
