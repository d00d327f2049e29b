"""Single sign-on: the account a person at the identity provider signs in to, and their teams
kept in step with the provider's groups (Team.idp_group and Team.idp_manager_group)."""

import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.models import ExternalIdentity, Membership, Team

from .teams import membership_remove, membership_set

USERNAME_MAX = 150


class SignInRefused(Exception):
    """The provider vouched for the person, but the studio will not sign them in; the message
    is for them."""


def _provider_name() -> str:
    """ "Okta", from the button's label "Sign in with Okta"; else "your identity provider"."""
    label = settings.OIDC_BUTTON_LABEL
    match = re.match(r"(?i)(?:sign|log) ?in (?:with|through|via) (.+)", label)
    name = match.group(1).strip() if match else ""
    if not name or name.lower() in ("single sign-on", "sso", "your identity provider"):
        return "your identity provider"
    return name


def _claim_str(claims: dict, name: str) -> str:
    value = claims.get(name)
    return value.strip() if isinstance(value, str) else ""


def _groups(claims: dict) -> set[str]:
    """The groups claim as a set of names. Absent means no groups: a person taken out of every
    group loses the teams those groups gave (some providers then leave the claim out)."""
    value = claims.get(settings.OIDC_GROUPS_CLAIM)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return set()
    # Keycloak may send full paths ("/Design"); the admin may write either form.
    groups = set()
    for item in value:
        if isinstance(item, str) and item.strip():
            groups.add(item.strip())
            groups.add(item.strip().lstrip("/"))
    return groups


def _free_username(claims: dict, email: str) -> str:
    """A username for a new account: the provider's preferred_username, else the address's
    local part, made of the characters Django allows, with a number added if it is taken."""
    User = get_user_model()
    wanted = _claim_str(claims, "preferred_username") or email.split("@")[0] or "user"
    base = re.sub(r"[^\w.@+-]", "", wanted)[: USERNAME_MAX - 6] or "user"
    candidate, n = base, 1
    while User.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}{n}"
    return candidate


def _names(claims: dict) -> tuple[str, str]:
    first, last = _claim_str(claims, "given_name"), _claim_str(claims, "family_name")
    if not (first or last):
        first, _, last = _claim_str(claims, "name").partition(" ")
    return first[:150], last[:150]


def _account_for(*, issuer: str, claims: dict):
    """The account these claims sign in to (see identity_sign_in, steps 1 to 4)."""
    User = get_user_model()
    subject = _claim_str(claims, "sub")
    provider = _provider_name()
    link = ExternalIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject)
    if link.exists():
        return link.get().user
    email = _claim_str(claims, "email")
    verified = claims.get("email_verified") is True
    same_email = User.objects.filter(email__iexact=email) if email else User.objects.none()
    if email and same_email.exists():
        if not verified:
            raise SignInRefused(
                f"A studio account already uses {email}, but {provider} has not confirmed that "
                f"this address is yours, so the studio did not sign you in: that keeps the "
                f"account safe from anyone who merely typed the address. Ask your administrator "
                f"to verify your address at {provider}"
                + (", or log in to that account as before." if settings.PASSWORD_LOGIN else ".")
            )
        if same_email.count() > 1:
            raise SignInRefused(
                f"More than one studio account uses {email}, so the studio cannot tell which is "
                f"yours. Ask an administrator to fix the addresses, then sign in again."
            )
        user = same_email.get()
    else:
        first, last = _names(claims)
        user = User(
            username=_free_username(claims, email),
            # Only an address the provider verified is kept: an account must never be matched
            # later by an address nobody proved.
            email=email if verified else "",
            first_name=first,
            last_name=last,
        )
        user.set_unusable_password()
        user.save()
    ExternalIdentity.objects.create(issuer=issuer, subject=subject, user=user)
    return user


def identity_sign_in(*, issuer: str, claims: dict, address=None):
    """The account for a person the identity provider vouched for, with their teams synced.

    1. Find the account tied to this issuer and `sub` (a returning person).
    2. Else, with `email_verified` true, the one account with that address, now tied to them.
       An unverified address that an account already uses is refused (SignInRefused): it must
       never take that account over.
    3. Else make an account from the claims (username, name; the address only if verified),
       with no usable password.
    4. A deactivated account is refused.
    5. Sync the teams with the groups claim (memberships_sync_from_groups).
    """
    if not _claim_str(claims, "sub"):
        raise SignInRefused(f"{_provider_name()} did not say who you are (no subject).")
    try:
        with transaction.atomic():
            user = _account_for(issuer=issuer, claims=claims)
    except IntegrityError:
        # The same person's first sign-in twice at once (two tabs): the other one made the link.
        user = _account_for(issuer=issuer, claims=claims)
    if not user.is_active:
        raise SignInRefused(
            "This studio account has been deactivated. Ask an administrator if you need it back."
        )
    first, last = _names(claims)
    if (first, last) != ("", "") and (user.first_name, user.last_name) != (first, last):
        get_user_model().objects.filter(pk=user.pk).update(first_name=first, last_name=last)
    ExternalIdentity.objects.filter(issuer=issuer, subject=_claim_str(claims, "sub")).update(
        last_sign_in_at=timezone.now()
    )
    memberships_sync_from_groups(user=user, groups=_groups(claims), address=address)
    return user


def memberships_sync_from_groups(*, user, groups: set[str], address=None) -> None:
    """Make the user's memberships from the identity provider match `groups`.

    1. Each team whose idp_manager_group is in `groups` wants them as a manager; else each
       whose idp_group is in `groups`, as a member.
    2. Memberships made in the studio (source=studio) are left alone, whatever the groups say.
    3. A membership from the provider that no group wants any more is removed through
       membership_remove, which takes away access at once and records it.
    4. Each wanted one is added or given its role through membership_set, which records it.
    """
    wanted: dict = {}
    for team in Team.objects.exclude(idp_group="", idp_manager_group=""):
        if team.idp_manager_group and team.idp_manager_group in groups:
            wanted[team.pk] = (team, Membership.Role.MANAGER)
        elif team.idp_group and team.idp_group in groups:
            wanted[team.pk] = (team, Membership.Role.MEMBER)
    current = {m.team_id: m for m in Membership.objects.filter(user=user).select_related("team")}
    for team_id, membership in current.items():
        if membership.source == Membership.Source.IDENTITY_PROVIDER and team_id not in wanted:
            membership_remove(team=membership.team, user=user, by=None, address=address)
    for team_id, (team, role) in wanted.items():
        membership = current.get(team_id)
        if membership is not None and membership.source == Membership.Source.STUDIO:
            continue
        membership_set(
            team=team,
            user=user,
            role=role,
            source=Membership.Source.IDENTITY_PROVIDER,
            by=None,
            address=address,
        )
