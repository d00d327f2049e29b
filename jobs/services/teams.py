"""Teams and memberships: made by staff (and, next, by the identity provider's groups), each
change recorded with who made it, before and after (AuditEvent)."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.models import ApiToken, AuditEvent, Membership, Team, audit_quote

from .audit import audit_record


class TeamError(ValueError):
    """A change that cannot be made, with a message for the person who asked."""


def _audit(*, actor, action, team, user=None, summary, before=None, after=None, address=None):
    audit_record(
        actor=actor,
        action=action,
        team=team,
        user=user,
        summary=summary,
        before=before,
        after=after,
        address=address,
    )


def _by_sign_in(actor, source) -> str:
    """How a summary says a change was made by a sign-in's group sync (services.identity)."""
    synced = actor is None and source == Membership.Source.IDENTITY_PROVIDER
    return " (identity provider groups, at sign-in)" if synced else ""


@transaction.atomic
def team_create(*, name: str, by, address=None) -> Team:
    name = name.strip()
    if not name:
        raise TeamError("A team needs a name.")
    if Team.objects.filter(name__iexact=name).exists():
        raise TeamError(f"There is already a team called {name}.")
    team = Team.objects.create(name=name)
    _audit(
        actor=by,
        action=AuditEvent.Action.TEAM_CREATED,
        team=team,
        summary=f"Created the {audit_quote(team.label)}",
        after={"name": team.name},
        address=address,
    )
    return team


@transaction.atomic
def team_rename(*, team: Team, name: str, by, address=None) -> Team:
    name = name.strip()
    if not name:
        raise TeamError("A team needs a name.")
    if name == team.name:
        return team
    if Team.objects.filter(name__iexact=name).exclude(pk=team.pk).exists():
        raise TeamError(f"There is already a team called {name}.")
    before = team.name
    Team.objects.filter(pk=team.pk).update(name=name)
    team.name = name
    _audit(
        actor=by,
        action=AuditEvent.Action.TEAM_CHANGED,
        team=team,
        summary=f"Renamed the team {audit_quote(before)} to {audit_quote(name)}",
        before={"name": before},
        after={"name": name},
        address=address,
    )
    return team


@transaction.atomic
def team_delete(*, team: Team, by, address=None) -> None:
    """Delete a team that never had a job (the admin refuses one that has: jobs and the ledger
    protect it), and record it. Its memberships, budgets and API tokens go with it. Its audit
    events stay, no longer linked to it; their summaries still say which team it was."""
    members = Membership.objects.filter(team=team).count()
    _audit(
        actor=by,
        action=AuditEvent.Action.TEAM_DELETED,
        team=team,
        summary=f"Deleted the {audit_quote(team.label)} ({members} member"
        f"{'s' if members != 1 else ''})",
        before={"name": team.name, "members": members},
        address=address,
    )
    team.delete()


@transaction.atomic
def team_models_set(*, team: Team, all_models: bool, model_ids, by, address=None) -> Team:
    """Which models the team may use: every model visible to everyone, or only `model_ids`."""
    before = {
        "all_models": team.all_models,
        "models": sorted(team.allowed_models.values_list("pk", flat=True)),
    }
    after = {"all_models": bool(all_models), "models": sorted(set(model_ids))}
    if before == after:
        return team
    Team.objects.filter(pk=team.pk).update(all_models=bool(all_models))
    team.all_models = bool(all_models)
    team.allowed_models.set(after["models"])
    allowed = "every model" if all_models else (", ".join(after["models"]) or "no model")
    allowed = audit_quote(allowed)
    _audit(
        actor=by,
        action=AuditEvent.Action.TEAM_MODELS,
        team=team,
        summary=f"The {audit_quote(team.label)} may use {allowed}",
        before=before,
        after=after,
        address=address,
    )
    return team


@transaction.atomic
def team_groups_set(
    *, team: Team, idp_group: str, idp_manager_group: str, by, address=None
) -> Team:
    """Which identity provider groups make people members and managers of the team at single
    sign-on (services.identity). Takes effect at each person's next sign-in."""
    before = {"idp_group": team.idp_group, "idp_manager_group": team.idp_manager_group}
    after = {"idp_group": idp_group.strip(), "idp_manager_group": idp_manager_group.strip()}
    if before == after:
        return team
    Team.objects.filter(pk=team.pk).update(**after)
    team.idp_group, team.idp_manager_group = after["idp_group"], after["idp_manager_group"]
    _audit(
        actor=by,
        action=AuditEvent.Action.TEAM_CHANGED,
        team=team,
        summary=audit_quote(
            f"The {team.label}'s identity provider groups are now "
            f"{after['idp_group'] or '(none)'} (members) and "
            f"{after['idp_manager_group'] or '(none)'} (managers)"
        ),
        before=before,
        after=after,
        address=address,
    )
    return team


def _retention_words(days) -> str:
    if days is None:
        return "the studio's default"
    return "keep for ever" if days == 0 else f"{days} day{'s' if days != 1 else ''}"


def _quota_words(quota) -> str:
    return "no quota" if quota is None else f"{quota.normalize():f} GB"


@transaction.atomic
def team_storage_set(*, team: Team, retention_days, storage_quota_gb, by, address=None) -> Team:
    """How long the team's videos are kept (None: the studio's RETENTION_DAYS; 0: for ever)
    and its storage quota in GB (None: none). Recorded in the audit trail. A longer or shorter
    retention applies at the sweeper's next pass; its owners are warned again for videos that
    then expire within seven days."""
    before = {"retention_days": team.retention_days, "storage_quota_gb": team.storage_quota_gb}
    after = {"retention_days": retention_days, "storage_quota_gb": storage_quota_gb}
    if before == after:
        return team
    Team.objects.filter(pk=team.pk).update(**after)
    team.retention_days, team.storage_quota_gb = retention_days, storage_quota_gb
    _audit(
        actor=by,
        action=AuditEvent.Action.TEAM_CHANGED,
        team=team,
        summary=f"The {team.label} now keeps its videos: {_retention_words(retention_days)}; "
        f"storage: {_quota_words(storage_quota_gb)}",
        before={**before, "storage_quota_gb": _json_quota(before["storage_quota_gb"])},
        after={**after, "storage_quota_gb": _json_quota(storage_quota_gb)},
        address=address,
    )
    return team


def _json_quota(quota) -> str | None:
    return None if quota is None else f"{quota.normalize():f}"


@transaction.atomic
def membership_set(
    *,
    team: Team,
    user,
    role: str = Membership.Role.MEMBER,
    source: str = Membership.Source.STUDIO,
    by,
    address=None,
) -> Membership:
    """Add `user` to the team with `role`, or change their role. Their first team becomes their
    default one."""
    membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
    if membership is not None:
        if membership.role == role:
            return membership
        before = membership.role
        Membership.objects.filter(pk=membership.pk).update(role=role)
        membership.role = role
        _audit(
            actor=by,
            action=AuditEvent.Action.MEMBER_CHANGED,
            team=team,
            user=user,
            summary=f"{{user}} is now a {role} of the {audit_quote(team.label)}{_by_sign_in(by, source)}",
            before={"role": before},
            after={"role": role},
            address=address,
        )
        return membership
    first = not Membership.objects.filter(user=user).exists()
    try:
        with transaction.atomic():
            membership = Membership.objects.create(
                team=team, user=user, role=role, source=source, is_default=first
            )
    except IntegrityError:
        # Another request added them at the same moment (or made another default first).
        membership = Membership.objects.create(
            team=team, user=user, role=role, source=source, is_default=False
        )
    _audit(
        actor=by,
        action=AuditEvent.Action.MEMBER_ADDED,
        team=team,
        user=user,
        summary=f"Added {{user}} to the {audit_quote(team.label)} as a {role}{_by_sign_in(by, source)}",
        after={"role": role, "source": source},
        address=address,
    )
    return membership


@transaction.atomic
def membership_remove(*, team: Team, user, by, address=None) -> bool:
    """Take `user` out of the team, at once: their access to its videos goes with the row
    (selectors.visible_to), and the tokens that charge the team stop working. What they made
    stays with the team, and its spend in the team's history."""
    membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
    if membership is None:
        return False
    membership.delete()
    revoked = ApiToken.objects.filter(user=user, team=team, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if membership.is_default:
        successor = Membership.objects.filter(user=user).order_by("team__name").first()
        if successor is not None:
            Membership.objects.filter(pk=successor.pk).update(is_default=True)
    _audit(
        actor=by,
        action=AuditEvent.Action.MEMBER_REMOVED,
        team=team,
        user=user,
        summary=(
            f"Removed {{user}} from the {audit_quote(team.label)}"
            + (f" ({revoked} API token{'s' if revoked != 1 else ''} revoked)" if revoked else "")
            + _by_sign_in(by, membership.source)
        ),
        before={"role": membership.role, "source": membership.source},
        address=address,
    )
    return True


@transaction.atomic
def default_team_set(*, user, team: Team | None) -> None:
    """The team the form and the API charge by default (None: the personal space)."""
    Membership.objects.filter(user=user, is_default=True).update(is_default=False)
    if team is not None:
        updated = Membership.objects.filter(user=user, team=team).update(is_default=True)
        if not updated:
            raise TeamError(f"You are not a member of the {team.label}.")
