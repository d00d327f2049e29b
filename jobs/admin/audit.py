"""The audit trail in the admin: read-only, filtered by action, actor, team and date, and
exported as CSV (the filtered list, streamed)."""

import json
from datetime import UTC

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html

from jobs.csvstream import csv_cell, csv_response
from jobs.models import AuditEvent

from .base import ReadOnlyAdmin

CSV_HEADER = ["when_utc", "action", "actor", "user", "team", "summary", "before", "after",
              "address"]  # fmt: skip


class ActorFilter(admin.SimpleListFilter):
    """The people who made changes (not every account), the studio itself, deleted accounts."""

    title = "actor"
    parameter_name = "actor"
    STUDIO, DELETED = "studio", "deleted"

    def lookups(self, request, model_admin):
        actors = (
            AuditEvent.objects.filter(actor__isnull=False).values("actor_id").distinct()
        )  # audit_actor_created index
        User = get_user_model()
        people = User._default_manager.filter(pk__in=actors).order_by(User.USERNAME_FIELD)
        return [
            *((str(user.pk), user.get_username()) for user in people),
            (self.STUDIO, "the studio (sign-in group sync, commands)"),
            (self.DELETED, "a deleted account"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.STUDIO:
            return queryset.filter(actor__isnull=True, had_actor=False)
        if value == self.DELETED:
            return queryset.filter(actor__isnull=True, had_actor=True)
        if value:
            if not value.isdigit():
                return queryset.none()
            return queryset.filter(actor_id=int(value))
        return queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Every change to who may do what or how money is counted: who, when, from where, before,
    after. Written by the code that makes the change; nobody edits or deletes it here."""

    change_list_template = "admin/jobs/auditevent/change_list.html"
    list_display = ["created_at", "actor_display", "action", "team_display", "user_display",
                    "text", "address"]  # fmt: skip
    list_filter = ["action", ActorFilter, "team", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["actor", "team", "user"]
    search_fields = ["summary", "actor__username", "user__username", "team__name", "address"]
    date_hierarchy = "created_at"
    fields = readonly_fields = ["created_at", "action", "actor_display", "user_display",
                                "team_display", "text", "before_display", "after_display",
                                "address"]  # fmt: skip

    @admin.display(description="Actor", ordering="actor__username")
    def actor_display(self, event):
        return event.actor_name

    @admin.display(description="About", ordering="user__username")
    def user_display(self, event):
        return event.user_name if event.user_id or "{user}" in event.summary else "—"

    @admin.display(description="Team", ordering="team__name")
    def team_display(self, event):
        return event.team.name if event.team_id else "—"

    @admin.display(description="Change")
    def text(self, event):
        return event.text

    @admin.display(description="Before")
    def before_display(self, event):
        return format_html("<pre>{}</pre>", _json(event.before))

    @admin.display(description="After")
    def after_display(self, event):
        return format_html("<pre>{}</pre>", _json(event.after))

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_csv)
        return [
            path("export/", export, name="jobs_auditevent_export"),
            *super().get_urls(),
        ]

    def export_csv(self, request):
        """The list as filtered on the page (action, actor, team, dates, search), as CSV,
        streamed in chunks from a database cursor, so a long history never sits in memory."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        events = self.get_changelist_instance(request).queryset

        def rows():
            # A page of rows at a time from the cursor, through the list's own select_related.
            for event in events.iterator(chunk_size=500):
                yield _csv_row(event)

        name = f"audit-{timezone.now():%Y-%m-%d-%H%M}.csv"
        return csv_response(header=CSV_HEADER, rows=rows, filename=name)


def _json(value) -> str:
    return "—" if value is None else json.dumps(value, indent=2, ensure_ascii=False)


def _csv_row(event: AuditEvent) -> list[str]:
    return [
        event.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        event.action,
        csv_cell(event.actor_name),
        csv_cell(event.user_name if event.user_id or "{user}" in event.summary else ""),
        csv_cell(event.team.name if event.team_id else ""),
        csv_cell(event.text),
        csv_cell("" if event.before is None else json.dumps(event.before, ensure_ascii=False)),
        csv_cell("" if event.after is None else json.dumps(event.after, ensure_ascii=False)),
        event.address or "",
    ]
