"""Budget notices as the people concerned read them: a person's own (personal, member-in-team
and API-token levels), a team's (the team's level and its members', for its managers), and the
organization's (for staff). The rows are written by services.budgets.notices_record."""

from jobs.models import Budget, BudgetNotice, Team

NOTICES_SHOWN = 20  # the newest; older ones stay in the table for delivery and the admin


def _newest(notices, limit: int):
    return notices.select_related("budget__team", "budget__user", "budget__token").order_by(
        "-created_at", "-pk"
    )[:limit]


def notices_for_user(*, user, limit: int = NOTICES_SHOWN):
    """The notices about budgets that limit `user` alone: personal, member in a team and their
    API tokens' (budgetnotice_user index). Team and organization levels are for managers and
    staff."""
    levels = (Budget.Level.PERSONAL, Budget.Level.MEMBER, Budget.Level.TOKEN)
    return _newest(BudgetNotice.objects.filter(user=user, level__in=levels), limit)


def notices_for_team(team: Team, *, limit: int = NOTICES_SHOWN):
    """The team's notices, for its managers and staff: the team's own budget and each member's
    budget in it (budgetnotice_team index). Tokens charged to the team are their owners'."""
    levels = (Budget.Level.TEAM, Budget.Level.MEMBER)
    return _newest(BudgetNotice.objects.filter(team=team, level__in=levels), limit)


def notices_for_organization(*, limit: int = NOTICES_SHOWN):
    """The organization budget's notices, for staff."""
    return _newest(BudgetNotice.objects.filter(level=Budget.Level.ORGANIZATION), limit)
