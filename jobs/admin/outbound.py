"""The outbox, webhook deliveries and the budget-alert hooks in the admin."""

from django import forms
from django.contrib import admin

from jobs import services, webhooks
from jobs.models import (
    AlertHook,
    OutgoingEmail,
    WebhookAttempt,
    WebhookDelivery,
)

from .base import ReadOnlyAdmin


@admin.register(OutgoingEmail)
class OutgoingEmailAdmin(ReadOnlyAdmin):
    """The outbox: what was sent, what waits for a retry, and what was given up (with the
    server's last words), so staff can see a message that never arrived and send it again."""

    list_display = ["created_at", "to", "subject", "status", "attempts", "sent_at", "last_error"]
    list_filter = ["status", "created_at"]
    search_fields = ["to", "subject", "key"]
    fields = [
        "key", "user", "to", "subject", "status", "attempts", "next_attempt_at",
        "last_error", "created_at", "sent_at", "text",
    ]  # fmt: skip
    actions = ["send_again"]

    @admin.action(description="Send again (a fresh set of attempts)")
    def send_again(self, request, queryset):
        again = sum(services.email_send_again(email=email) for email in queryset)
        self.message_user(
            request,
            f"{again} message(s) queued again; messages already sent are not sent twice.",
        )

    def has_change_permission(self, request, obj=None):
        return False  # actions still run: they go through the service


class AlertHookForm(forms.ModelForm):
    url = forms.URLField(
        max_length=webhooks.URL_MAX_LENGTH,
        assume_scheme="https",
        help_text=AlertHook._meta.get_field("url").help_text,
    )

    class Meta:
        model = AlertHook
        fields = ["name", "url", "is_active"]

    def clean_url(self):
        try:
            return webhooks.url_check(self.cleaned_data["url"])
        except webhooks.WebhookUrlError as exc:
            raise forms.ValidationError(f"The studio cannot post there: {exc}.") from None


@admin.register(AlertHook)
class AlertHookAdmin(admin.ModelAdmin):
    """Incoming webhooks (Slack-compatible) that receive every new budget notice, once each.
    A hook added now gets the notices made from now on."""

    form = AlertHookForm
    list_display = ["name", "url", "is_active", "created_at"]
    list_editable = ["is_active"]


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = readonly_fields = ["started_at", "duration_ms", "status_code", "error"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """Every webhook the studio sends or has given up on: API callers' job webhooks and budget
    alerts, each with its attempts. Send again re-arms a delivered or given-up one."""

    list_display = ["created_at", "event", "url", "status", "last_status_code", "attempts",
                    "token", "hook"]  # fmt: skip
    list_filter = ["status", "kind", "event"]
    search_fields = ["url", "job__id", "token__name", "token__user__username"]
    list_select_related = ["token", "hook"]
    fields = ["kind", "event", "status", "url", "job", "token", "notice", "hook", "attempts",
              "next_attempt_at", "last_status_code", "last_error", "created_at", "delivered_at",
              "body"]  # fmt: skip
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["send_again"]

    def has_send_again_permission(self, request):
        return request.user.is_staff

    @admin.action(description="Send the selected deliveries again", permissions=["send_again"])
    def send_again(self, request, queryset):
        again = sum(services.delivery_resend(delivery=delivery) for delivery in queryset)
        self.message_user(
            request, f"Sending {again} again (deliveries still on their way are left)."
        )
