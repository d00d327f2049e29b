"""The audit history: who changed a team, its members, budgets or models, from what to what.
Staff read all of it (in the admin); a team's managers read their team's."""

from jobs.models import AuditEvent, Team

AUDIT_SHOWN = 50  # a page of the newest; staff have the whole list in the admin


def audit_events_for_team(team: Team, *, limit: int = AUDIT_SHOWN):
    """The team's events, newest first (audit_team_created index)."""
    events = AuditEvent.objects.filter(team=team).select_related("actor", "user")
    return events.order_by("-created_at", "-pk")[:limit]
