"""The navigation's Teams menu."""

from dataclasses import dataclass

from django import template

from jobs import selectors

register = template.Library()


@dataclass(frozen=True)
class TeamLink:
    team: object
    may_review: bool  # a manager of the team, or staff


@register.simple_tag
def teams_menu(user) -> list[TeamLink]:
    """The teams whose videos `user` may open, by name: their own, and every team for staff.
    One query, on a full page only (the fragments do not extend base.html)."""
    if not user.is_authenticated:
        return []
    if user.is_staff:
        return [TeamLink(team, True) for team in selectors.teams_managed_by(user=user)]
    return [
        TeamLink(membership.team, membership.is_manager)
        for membership in selectors.memberships_for_user(user=user)
    ]
