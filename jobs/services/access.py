"""Who may use the studio at all, and as what: accounts' active, staff and superuser flags, their
groups and permissions, a group's permissions, staff letting someone in without a confirmed
address, untying a single sign-on identity, deleting an account. Each change is recorded in
the audit trail (AuditEvent).

Django itself writes the flags, groups and permissions (the admin's user and group pages,
manage.py createsuperuser, the shell), so those are caught by signals wherever they are made,
and the request in progress (services.audit.request_actor) says who made them and from where.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models.signals import m2m_changed, post_save, pre_save

from jobs.models import AccountEmail, AuditEvent, ExternalIdentity, audit_quote

from .audit import audit_record, request_actor

ACCESS_FLAGS = ("is_active", "is_staff", "is_superuser")
# What an account made by sign-up has: making one so records nothing.
NEW_ACCOUNT_FLAGS = {"is_active": True, "is_staff": False, "is_superuser": False}
FLAG_WORDS = {
    ("is_active", True): "activated {user}'s account",
    ("is_active", False): "deactivated {user}'s account",
    ("is_staff", True): "made {user} staff",
    ("is_staff", False): "took staff status from {user}",
    ("is_superuser", True): "made {user} a superuser",
    ("is_superuser", False): "took superuser status from {user}",
}
OUTSIDE_A_REQUEST = " (on the server: a command or the shell)"


def _user_flags_before(sender, instance, raw=False, update_fields=None, **kwargs):
    """pre_save: read the account's flags as stored, unless this save cannot change them."""
    instance._access_before = None
    if raw or (update_fields is not None and not set(update_fields) & set(ACCESS_FLAGS)):
        return
    stored = None
    if not instance._state.adding:
        stored = sender._default_manager.filter(pk=instance.pk).values(*ACCESS_FLAGS).first()
    instance._access_before = stored if stored is not None else dict(NEW_ACCOUNT_FLAGS)


def _user_flags_after(sender, instance, raw=False, **kwargs):
    """post_save: record the flags that changed (for a new account, those that differ from a
    sign-up's), in the save's transaction."""
    before = instance.__dict__.pop("_access_before", None)
    if raw or before is None:
        return
    after = {flag: bool(getattr(instance, flag)) for flag in ACCESS_FLAGS}
    changed = [flag for flag in ACCESS_FLAGS if after[flag] != before[flag]]
    if not changed:
        return
    actor, address = request_actor()
    words = [FLAG_WORDS[(flag, after[flag])] for flag in changed]
    sentence = ", ".join(words)
    audit_record(
        actor=actor,
        action=AuditEvent.Action.USER_ACCESS,
        user=instance,
        summary=sentence[:1].upper() + sentence[1:] + ("" if actor else OUTSIDE_A_REQUEST),
        before={flag: before[flag] for flag in changed},
        after={flag: after[flag] for flag in changed},
        address=address,
    )


def _names(model, objects) -> set[str]:
    if model is Permission:
        return {f"{p.content_type.app_label}.{p.codename}" for p in objects}
    return {group.name for group in objects}


def _related_names(subject, relation: str) -> set[str]:
    manager = getattr(subject, relation)
    if manager.model is Permission:
        return _names(Permission, manager.select_related("content_type"))
    return _names(Group, manager.all())


# For each m2m table: the relation's name on the subject whose change is recorded, and on the
# other side's instance (for a change made from there, e.g. group.user_set.add(user)).
def _m2m_tables():
    User = get_user_model()
    return {
        User.groups.through: ("groups", "user_set", User),
        User.user_permissions.through: ("user_permissions", "user_set", User),
        Group.permissions.through: ("permissions", "group_set", Group),
    }


def _m2m_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    """Record a change to an account's groups or permissions, or a group's permissions, from
    either side: the names before (pre_*) against the names after (post_*), per subject."""
    tables = _m2m_tables()
    if sender not in tables:
        return
    relation, _, subject_model = tables[sender]
    if action.startswith("pre_"):
        if reverse:
            if action == "pre_clear":
                subjects = list(getattr(instance, tables[sender][1]).all())
            else:
                subjects = list(subject_model._default_manager.filter(pk__in=pk_set or ()))
        else:
            subjects = [instance]
        instance._m2m_before = [(s, _related_names(s, relation)) for s in subjects]
        return
    for subject, before in instance.__dict__.pop("_m2m_before", []):
        after = _related_names(subject, relation)
        if after != before:
            _m2m_record(subject=subject, relation=relation, before=before, after=after)


def _m2m_record(*, subject, relation: str, before: set, after: set) -> None:
    added, removed = sorted(after - before), sorted(before - after)
    change = ", ".join([*(f"+{n}" for n in added), *(f"−{n}" for n in removed)])
    what = "groups" if relation == "groups" else "permissions"
    actor, address = request_actor()
    where = "" if actor else OUTSIDE_A_REQUEST
    if isinstance(subject, Group):
        audit_record(
            actor=actor,
            action=AuditEvent.Action.GROUP_PERMISSIONS,
            summary=audit_quote(f"Group {subject.name}'s permissions: {change}") + where,
            before={"group": subject.name, "permissions": sorted(before)},
            after={"group": subject.name, "permissions": sorted(after)},
            address=address,
        )
        return
    audit_record(
        actor=actor,
        action=AuditEvent.Action.USER_PERMISSIONS,
        user=subject,
        summary="{user}'s " + what + ": " + audit_quote(change) + where,
        before={what: sorted(before)},
        after={what: sorted(after)},
        address=address,
    )


def connect_signals() -> None:
    User = get_user_model()
    pre_save.connect(_user_flags_before, sender=User, dispatch_uid="audit_user_flags_before")
    post_save.connect(_user_flags_after, sender=User, dispatch_uid="audit_user_flags_after")
    for through in _m2m_tables():
        m2m_changed.connect(_m2m_changed, sender=through, dispatch_uid=f"audit_m2m_{through}")


@transaction.atomic
@transaction.atomic
def account_must_verify_set(*, account_email: AccountEmail, must_verify: bool, by, address=None):
    """Whether the person must confirm their address before they may log in (staff untick it
    to let in someone who mistyped theirs). One conditional UPDATE, recorded."""
    changed = AccountEmail.objects.filter(pk=account_email.pk, must_verify=not must_verify).update(
        must_verify=must_verify
    )
    account_email.must_verify = must_verify
    if not changed:
        return
    audit_record(
        actor=by,
        action=AuditEvent.Action.USER_VERIFICATION,
        user=account_email.user,
        summary=(
            "{user} must confirm their address before logging in"
            if must_verify
            else "Let {user} log in without confirming their address"
        ),
        before={"must_verify": not must_verify},
        after={"must_verify": must_verify},
        address=address,
    )


@transaction.atomic
def identity_unlink(*, identity: ExternalIdentity, by, address=None) -> None:
    """Untie a single sign-on identity from its account (staff, in the admin): the person's
    next sign-in matches by verified address again, or makes a new account. Recorded."""
    audit_record(
        actor=by,
        action=AuditEvent.Action.USER_IDENTITY,
        user=identity.user,
        summary="Untied {user}'s account from single sign-on at " + audit_quote(identity.issuer),
        before={"issuer": identity.issuer},
        address=address,
    )
    identity.delete()
