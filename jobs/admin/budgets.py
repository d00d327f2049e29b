"""Budgets in the admin: every change goes through services.budget_set, which audits it."""

from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from jobs import services
from jobs.models import (
    AuditEvent,
    Budget,
)
from jobs.security import client_ip

from .base import _limit


class BudgetForm(forms.ModelForm):
    class Meta:
        model = Budget
        fields = ["level", "team", "user", "token", "limit", "period"]

    def clean_limit(self):
        limit = self.cleaned_data["limit"]
        if limit is not None and limit < 0:
            raise forms.ValidationError("A budget cannot be negative. Leave it empty for no limit.")
        return limit

    def clean(self):
        data = super().clean()
        level = data.get("level")
        needs = {
            Budget.Level.ORGANIZATION: set(),
            Budget.Level.TEAM: {"team"},
            Budget.Level.MEMBER: {"team", "user"},
            Budget.Level.PERSONAL: {"user"},
            Budget.Level.TOKEN: {"token"},
        }.get(level, set())
        for name in ("team", "user", "token"):
            if name in needs and not data.get(name):
                self.add_error(name, f"A {Budget.Level(level).label} budget names its {name}.")
            elif name not in needs and data.get(name):
                self.add_error(
                    name, f"A {Budget.Level(level).label} budget does not name a {name}."
                )
        return data


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    """Limits at every level. Every save goes through services.budget_set, which records who
    changed the limit, when, from what and to what (AuditEvent)."""

    form = BudgetForm
    list_display = ["__str__", "level", "team", "user", "token", "limit_display", "period"]
    list_filter = ["level", "period"]
    list_select_related = ["team", "user", "token"]
    search_fields = ["user__username", "team__name", "token__name"]
    ordering = ["level", "team__name", "user__username"]
    readonly_fields = ["history"]

    def get_fields(self, request, obj=None):
        fields = ["level", "team", "user", "token", "limit", "period"]
        return [*fields, "history"] if obj else fields

    def get_readonly_fields(self, request, obj=None):
        # What the budget is for is fixed once it exists; only the limit and period change.
        return ["level", "team", "user", "token", "history"] if obj else []

    @admin.display(description="Limit", ordering="limit")
    def limit_display(self, budget):
        return _limit(budget.limit)

    @admin.display(description="Changes")
    def history(self, budget):
        changes = (
            AuditEvent.objects.filter(action=AuditEvent.Action.BUDGET_SET)
            .filter(
                before__isnull=False,
                team=budget.team,
                user=budget.user or (budget.token.user if budget.token else None),
            )
            .select_related("actor")[:50]
        )
        if not changes:
            return "No changes recorded."
        return format_html(
            "<table><thead><tr><th>When (UTC)</th><th>By</th><th>Change</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (f"{change.created_at:%Y-%m-%d %H:%M}", change.actor_name, change.text)
                    for change in changes
                ),
            ),
        )

    def delete_model(self, request, obj):
        services.budget_delete(budget=obj, by=request.user, address=client_ip(request))

    def delete_queryset(self, request, queryset):
        for budget in queryset.select_related("team", "user", "token__user"):
            self.delete_model(request, budget)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        source = obj if change else data
        get = (lambda name: getattr(source, name)) if change else data.get
        budget = services.budget_set(
            level=get("level"),
            team=get("team"),
            user=get("user"),
            token=get("token"),
            limit=data["limit"],
            period=data["period"],
            changed_by=request.user,
            address=client_ip(request),
        )
        obj.pk = budget.pk
