"""A person's own spending: this month against their budget, and the months before; their
teams' budgets (the team's and their own in it) with what is left and when each resets; and
the threshold notices addressed to them."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from jobs import charts, selectors
from jobs.models import CostEntry

MONTHS_SHOWN = 12  # this month and the eleven before it


@login_required
@require_GET
def spending(request):
    """Every figure comes from the ledger, filtered to request.user: nobody sees anyone else's."""
    now = timezone.now()
    months = selectors.spending_by_month_for_user(user=request.user, months=MONTHS_SHOWN, now=now)
    this_month = months[0]
    days = selectors.daily_spend(
        CostEntry.objects.filter(user=request.user, created_at__gte=this_month["month"]),
        first_day=this_month["month"].date(),
        last_day=now.date(),
    )
    budget, *team_budgets = selectors.budget_statuses_for_user(user=request.user, now=now)
    return render(
        request,
        "jobs/spending.html",
        {
            "this_month": this_month,
            "earlier_months": months[1:],
            "days": days,
            "chart": charts.bar_chart(
                charts.daily_bars(days),
                title=f"Spend per day in {this_month['month']:%B %Y}",
                chart_id="daily-spend",
            ),
            "budget": budget,
            "team_budgets": team_budgets,
            "notices": _labelled(selectors.notices_for_user(user=request.user), request.user),
            "holds": selectors.holds_for_user(user=request.user),
        },
    )


def _labelled(notices, user) -> list:
    """Each notice with its budget named for the person reading: "Your personal budget"."""
    notices = list(notices)
    for notice in notices:
        notice.budget_label = selectors.budget_label(notice.budget, viewer=user)
    return notices
