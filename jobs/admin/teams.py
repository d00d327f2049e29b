"""Teams and their members in the admin, through the team services (which record each change)."""

from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from jobs.models import (
    Job,
    Membership,
    Team,
)
from jobs.security import client_ip
from jobs.services import teams as team_services
from jobs.templatetags.studio import bytes_size


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ["user", "role", "source", "is_default", "created_at"]
    readonly_fields = ["source", "is_default", "created_at"]
    autocomplete_fields = ["user"]
    extra = 0


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    """Teams, their members and the models they may use. Every change goes through
    services.teams, which records it (AuditEvent)."""

    list_display = ["name", "member_count", "all_models", "retention", "storage", "created_at"]
    search_fields = ["name"]
    fields = [
        "name",
        "all_models",
        "allowed_models",
        "idp_group",
        "idp_manager_group",
        "retention_days",
        "storage_quota_gb",
        "storage",
    ]
    readonly_fields = ["storage"]
    filter_horizontal = ["allowed_models"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        # Two aggregates over different relations: subqueries, so neither multiplies the other.
        members = Membership.objects.filter(team=OuterRef("pk")).values("team")
        stored = Job.objects.filter(team=OuterRef("pk")).values("team")
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_count=Coalesce(Subquery(members.annotate(n=Count("pk")).values("n")), 0),
                stored=Coalesce(Subquery(stored.annotate(n=Sum("stored_bytes")).values("n")), 0),
            )
        )

    @admin.display(description="Members", ordering="member_count")
    def member_count(self, team):
        return team.member_count

    def delete_model(self, request, obj):
        team_services.team_delete(team=obj, by=request.user, address=client_ip(request))

    def delete_queryset(self, request, queryset):
        for team in queryset:
            self.delete_model(request, team)

    @admin.display(description="Retention")
    def retention(self, team):
        days = team.effective_retention_days
        kept = "for ever" if days is None else f"{days} days"
        return kept if team.retention_days is not None else f"{kept} (studio default)"

    @admin.display(description="Storage used", ordering="stored")
    def storage(self, team):
        if team.pk is None:
            return "—"
        words = bytes_size(team.stored)
        quota = team.storage_quota_bytes
        if quota is not None:
            words += f" of {bytes_size(quota)} ({min(100, round(100 * team.stored / quota))}%)"
        return words

    def save_model(self, request, obj, form, change):
        address = client_ip(request)
        if change:
            team = team_services.team_rename(
                team=Team.objects.get(pk=obj.pk),
                name=form.cleaned_data["name"],
                by=request.user,
                address=address,
            )
        else:
            team = team_services.team_create(
                name=form.cleaned_data["name"], by=request.user, address=address
            )
        team_services.team_groups_set(
            team=team,
            idp_group=form.cleaned_data["idp_group"],
            idp_manager_group=form.cleaned_data["idp_manager_group"],
            by=request.user,
            address=address,
        )
        team_services.team_storage_set(
            team=team,
            retention_days=form.cleaned_data["retention_days"],
            storage_quota_gb=form.cleaned_data["storage_quota_gb"],
            by=request.user,
            address=address,
        )
        obj.pk = team.pk
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        team = form.instance
        team_services.team_models_set(
            team=team,
            all_models=form.cleaned_data["all_models"],
            model_ids=[m.pk for m in form.cleaned_data["allowed_models"]],
            by=request.user,
            address=client_ip(request),
        )
        for formset in formsets:
            self.save_formset(request, form, formset, change)

    def save_formset(self, request, form, formset, change):
        address = client_ip(request)
        team = form.instance
        # What the admin's change message lists; the services write the rows themselves.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            if not hasattr(inline_form, "cleaned_data") or not inline_form.cleaned_data:
                continue
            data = inline_form.cleaned_data
            user = data.get("user")
            if user is None:
                continue
            if data.get("DELETE"):
                team_services.membership_remove(
                    team=team, user=inline_form.instance.user, by=request.user, address=address
                )
                formset.deleted_objects.append(inline_form.instance)
            elif inline_form.has_changed():
                if inline_form.instance.pk and inline_form.instance.user_id != user.pk:
                    team_services.membership_remove(
                        team=team, user=inline_form.instance.user, by=request.user, address=address
                    )
                membership = team_services.membership_set(
                    team=team, user=user, role=data["role"], by=request.user, address=address
                )
                if inline_form.instance.pk:
                    formset.changed_objects.append((membership, inline_form.changed_data))
                else:
                    formset.new_objects.append(membership)
