"""Teams as a person sees them: the ones they belong to, the one they charge by default, and
the teams they manage."""

from django.http import Http404

from jobs.models import Membership, Team


def memberships_for_user(*, user):
    """The user's memberships with their teams, by team name (membership_user index)."""
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")


def membership_for(*, user, team_id) -> Membership | None:
    """The user's membership of this team, or None (the membership_team_user index)."""
    if team_id is None or not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, team_id=team_id).select_related("team").first()


def default_team_for(*, user) -> Team | None:
    membership = Membership.objects.filter(user=user, is_default=True).select_related("team")
    found = membership.first()
    return found.team if found else None


def team_get_for_member(*, user, team_id) -> tuple[Team, Membership | None]:
    """The team and the user's membership, if they belong to it; staff see every team (with no
    membership unless they have one). Anyone else gets 404, so nobody learns a team exists."""
    membership = membership_for(user=user, team_id=team_id)
    if membership is not None:
        return membership.team, membership
    if user.is_staff:
        team = Team.objects.filter(pk=team_id).first()
        if team is not None:
            return team, None
    raise Http404("No such team.")


def team_get_for_manager(*, user, team_id) -> tuple[Team, Membership | None]:
    """The team, for its managers and for staff; 404 for everyone else, members included."""
    team, membership = team_get_for_member(user=user, team_id=team_id)
    if user.is_staff or (membership is not None and membership.is_manager):
        return team, membership
    raise Http404("No such team.")


def teams_managed_by(*, user):
    """The teams the user manages (all of them for staff), by name."""
    if user.is_staff:
        return Team.objects.order_by("name")
    return Team.objects.filter(
        memberships__user=user, memberships__role=Membership.Role.MANAGER
    ).order_by("name")


def team_member_ids(*, team) -> list[int]:
    return list(Membership.objects.filter(team=team).values_list("user_id", flat=True))
