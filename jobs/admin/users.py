"""People in the admin: budgets and teams beside each user, addresses, sign-in identities."""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import OuterRef, Prefetch, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from jobs.models import (
    AccountEmail,
    Budget,
    ExternalIdentity,
    Job,
    Membership,
)
from jobs.security import client_ip
from jobs.services import access, account_deletion
from jobs.templatetags.studio import bytes_size

from .base import _limit


@admin.register(AccountEmail)
class AccountEmailAdmin(admin.ModelAdmin):
    """Whose address is confirmed, and who waits for it before they may log in. Staff can let
    someone in who mistyped their address at sign-up: fix it on the user, untick "must verify"."""

    list_display = ["user", "verified_email", "verified_at", "must_verify"]
    list_filter = ["must_verify"]
    search_fields = ["user__username", "user__email", "verified_email"]
    raw_id_fields = ["user"]

    def save_model(self, request, obj, form, change):
        """ "Must verify" goes through the service, which records who let whom in."""
        wanted = obj.must_verify
        if change:
            obj.must_verify = AccountEmail.objects.get(pk=obj.pk).must_verify
        else:
            obj.must_verify = False
        super().save_model(request, obj, form, change)
        access.account_must_verify_set(
            account_email=obj, must_verify=wanted, by=request.user, address=client_ip(request)
        )


User = get_user_model()
admin.site.unregister(User)


class PersonalBudgetInline(admin.TabularInline):
    """A user's personal budget on their user page; change it on the budget's own page."""

    model = Budget
    fk_name = "user"
    fields = readonly_fields = ["level", "team", "limit", "period"]
    extra = 0
    can_delete = False
    verbose_name_plural = "budgets"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class UserMembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    fields = readonly_fields = ["team", "role", "source", "is_default"]
    extra = 0
    can_delete = False
    verbose_name_plural = "teams"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(User)
class StudioUserAdmin(UserAdmin):
    """Django's user admin, with each user's personal budget, budgets and teams."""

    list_display = [*UserAdmin.list_display, "monthly_budget", "storage"]
    inlines = [*UserAdmin.inlines, UserMembershipInline, PersonalBudgetInline]
    readonly_fields = ["storage"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return [*fieldsets, ("Storage", {"fields": ["storage"]})]

    def get_queryset(self, request):
        personal = Budget.objects.filter(level=Budget.Level.PERSONAL)
        # The bytes of every file of the videos they made, personal and team alike.
        stored = Job.objects.filter(owner=OuterRef("pk")).values("owner")
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("budgets", queryset=personal, to_attr="personal"))
            .annotate(
                stored=Coalesce(Subquery(stored.annotate(n=Sum("stored_bytes")).values("n")), 0)
            )
        )

    # Deleting a user goes through the same service as a person deleting their own account
    # (services/account_deletion.py): their personal files leave the storage, the ledger keeps
    # its entries without the name, their team videos stay with the teams, and the same
    # refusals apply (the break-glass account, the last superuser, jobs being made).

    def delete_view(self, request, object_id, extra_context=None):
        user = self.get_object(request, object_id)
        refusal = user and account_deletion.account_deletion_refusal(user=user, own=False)
        if refusal:
            message = f"{user.get_username()} was not deleted. {refusal}"
            self.message_user(request, message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:auth_user_change", args=[user.pk]))
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request, obj):
        account_deletion.account_delete(
            user=obj, by=request.user, address=client_ip(request), own=False
        )

    def delete_queryset(self, request, queryset):
        for user in queryset:
            try:
                account_deletion.account_delete(
                    user=user, by=request.user, address=client_ip(request), own=False
                )
            except account_deletion.AccountDeletionRefused as exc:
                self.message_user(
                    request, f"{user.get_username()} was not deleted. {exc}", messages.ERROR
                )

    @admin.display(description="Storage used", ordering="stored")
    def storage(self, user):
        return bytes_size(getattr(user, "stored", 0))

    @admin.display(description="Personal budget")
    def monthly_budget(self, user):
        budget = user.personal[0] if getattr(user, "personal", None) else None
        if budget is None:
            return f"default ({_limit(settings.DEFAULT_MONTHLY_BUDGET)})"
        link = reverse("admin:jobs_budget_change", args=[budget.pk])
        return format_html('<a href="{}">{}</a>', link, f"{_limit(budget.limit)} a {budget.period}")


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(admin.ModelAdmin):
    """Who signs in to which account through single sign-on. Deleting a row unties the person:
    their next sign-in matches by verified email again, or makes a new account."""

    list_display = ["user", "subject", "issuer", "created_at", "last_sign_in_at"]
    search_fields = ["user__username", "user__email", "subject"]
    readonly_fields = ["issuer", "subject", "user", "created_at", "last_sign_in_at"]

    def has_add_permission(self, request):
        return False

    def delete_model(self, request, obj):
        access.identity_unlink(identity=obj, by=request.user, address=client_ip(request))

    def delete_queryset(self, request, queryset):
        for identity in queryset.select_related("user"):
            self.delete_model(request, identity)
