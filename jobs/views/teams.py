"""A team's pages for its managers (who need not be staff) and for staff: the team's spend
review (the staff cost review's figures, read only from the entries charged to the team), its
drill-downs and CSV, its budget, notices and audit history, and its members' budgets.

Every view's first line is selectors.team_get_for_manager, which answers 404 to anyone else,
members included, so nobody learns what a team spends or even that it exists.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods

from jobs import selectors, services
from jobs.models import Budget
from jobs.security import client_ip

from .review import (
    BudgetForm,
    budget_words,
    entries_figures,
    ledger_csv,
    period_form,
    review_figures,
)


@login_required
@require_GET
def team_review(request, team_id):
    team, _ = selectors.team_get_for_manager(user=request.user, team_id=team_id)
    form = period_form(request)
    return render(
        request,
        "jobs/team_review.html",
        {
            "team": team,
            "form": form,
            **review_figures(request, form.period, team=team),
            "entries_url": reverse("teams:entries", args=[team.pk]),
            "budget": selectors.team_budget_status(team=team, viewer=request.user),
            "notices": selectors.notices_for_team(team),
            "audit": selectors.audit_events_for_team(team),
        },
    )


@login_required
@require_GET
def team_entries(request, team_id):
    """The drill-down: one member's or one model's entries charged to the team."""
    team, _ = selectors.team_get_for_manager(user=request.user, team_id=team_id)
    form = period_form(request)
    return render(
        request,
        "jobs/team_entries.html",
        {"team": team, "form": form, **entries_figures(request, form.period, team=team)},
    )


@login_required
@require_GET
def team_export(request, team_id):
    """The team's part of the ledger as CSV (the staff export's columns)."""
    team, _ = selectors.team_get_for_manager(user=request.user, team_id=team_id)
    return ledger_csv(period_form(request).period, team=team, name=f"{slugify(team.name)}-ledger")


def _member_form(member, data=None) -> BudgetForm:
    """The budget form of one member's row: its own prefix, so each row's fields have their own
    ids and labels ("Budget for bob (USD)")."""
    budget = member.status.budget if member.status.budget.pk else None
    form = BudgetForm(data, budget=budget, prefix=f"member-{member.membership.pk}")
    name = member.membership.user.get_username()
    form.fields["limit"].label = f"Budget for {name} (USD)"
    form.fields["period"].label = f"Period for {name}"
    return form


def _team_form(team, status, data=None) -> BudgetForm:
    form = BudgetForm(data, budget=status.budget if status.budget.pk else None, prefix="team")
    form.fields["limit"].label = f"Budget of the {team.label} (USD)"
    form.fields["period"].label = f"Period of the {team.label}'s budget"
    return form


@login_required
@require_http_methods(["GET", "POST"])
def team_budgets(request, team_id):
    """Each member's budget in the team: spent, left, period, when it resets; managers (and
    staff) set it within the team's budget. Staff may set the team's own budget here too.

    A POST names the row it changes: `member` (a username) or `team`. A bad amount, or a
    member's limit above the team's, comes back as that row's form error (status 400).
    """
    team, _ = selectors.team_get_for_manager(user=request.user, team_id=team_id)
    members = selectors.member_budget_statuses(team=team)
    team_status = selectors.team_budget_status(team=team, viewer=request.user)
    forms = {member.membership.pk: _member_form(member) for member in members}
    team_form = _team_form(team, team_status) if request.user.is_staff else None
    address = client_ip(request)

    if request.method == "POST":
        username = request.POST.get("member")
        if request.POST.get("team") is not None and request.user.is_staff:
            team_form = _team_form(team, team_status, request.POST)
            if _save(team_form, level=Budget.Level.TEAM, team=team, request=request):
                status = selectors.team_budget_status(team=team, viewer=request.user)
                messages.success(request, f"{team.label}'s budget is now {budget_words(status)}.")
                return redirect("teams:budgets", team_id=team.pk)
        else:
            member = next(
                (m for m in members if m.membership.user.get_username() == username), None
            )
            if member is None:
                messages.error(request, "Choose a member of this team.")
            else:
                form = forms[member.membership.pk] = _member_form(member, request.POST)
                if _save(
                    form,
                    level=Budget.Level.MEMBER,
                    team=team,
                    user=member.membership.user,
                    request=request,
                    address=address,
                ):
                    fresh = selectors.member_budget_statuses(team=team)
                    status = next(
                        m.status for m in fresh if m.membership.pk == member.membership.pk
                    )
                    messages.success(
                        request,
                        f"{username}'s budget in the {team.label} is now {budget_words(status)}.",
                    )
                    return redirect("teams:budgets", team_id=team.pk)
        status_code = 400
    else:
        status_code = 200

    return render(
        request,
        "jobs/team_budgets.html",
        {
            "team": team,
            "team_status": team_status,
            "team_form": team_form,
            "rows": [(member, forms[member.membership.pk]) for member in members],
        },
        status=status_code,
    )


def _save(form, *, level, team, user=None, request, address=None) -> bool:
    """Set the budget from a valid form through services.budget_set (which audits it); a limit
    it refuses becomes the form's error. True if it was set."""
    if not form.is_valid():
        return False
    try:
        services.budget_set(
            level=level,
            team=team,
            user=user,
            limit=form.cleaned_data["limit"],
            period=form.cleaned_data["period"],
            changed_by=request.user,
            address=address or client_ip(request),
        )
    except services.BudgetLimitError as exc:
        form.add_error("limit", str(exc))
        return False
    return True
