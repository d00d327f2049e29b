"""The audit trail: who changed who may do what, or how money is counted, from what to what.

Append-only. The application refuses to change or delete a row (the model and its queryset
raise AuditEventImmutableError), the admin shows it read-only, and on PostgreSQL a trigger
(migration 0014) refuses UPDATE and DELETE to anything that gets past them, with one exception:
deleting a user or a team sets the rows' links to it to NULL (on_delete=SET_NULL), so that a
deleted person is no longer named. For the same reason no row stores a person's name: the
summary holds {actor} and {user} where the names go, filled in when it is read (AuditEvent.text).
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

# The only change a row accepts after it is written: a link to a deleted user or team cleared.
CLEARABLE_LINKS = frozenset({"actor", "actor_id", "user", "user_id", "team", "team_id"})
DELETED_ACCOUNT = "a deleted account"


class AuditEventImmutableError(Exception):
    """Audit events are written once and never changed or deleted by the application."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        # Django's Collector clears the links of a deleted user or team with update(actor=None).
        if kwargs and set(kwargs) <= CLEARABLE_LINKS and all(v is None for v in kwargs.values()):
            return super().update(**kwargs)
        raise AuditEventImmutableError("Audit events cannot be changed.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditEventImmutableError("Audit events cannot be changed.")

    def delete(self):
        raise AuditEventImmutableError("Audit events cannot be deleted.")

    delete.queryset_only = True

    def _raw_delete(self, using):
        raise AuditEventImmutableError("Audit events cannot be deleted.")


class AuditEvent(models.Model):
    """One change to who may do what or how money is counted: teams, memberships, budgets, the
    models people may use, accounts' access, reconciliation verdicts, token revocations.
    Written by the code that makes the change, in the same transaction (services.audit)."""

    class Action(models.TextChoices):
        TEAM_CREATED = "team.created", "team created"
        TEAM_CHANGED = "team.changed", "team changed"
        TEAM_MODELS = "team.models", "team's models changed"
        TEAM_DELETED = "team.deleted", "team deleted"
        MEMBER_ADDED = "member.added", "member added"
        MEMBER_CHANGED = "member.changed", "membership changed"
        MEMBER_REMOVED = "member.removed", "member removed"
        BUDGET_SET = "budget.set", "budget set"
        BUDGET_DELETED = "budget.deleted", "budget deleted"
        MODEL_VISIBILITY = "model.visibility", "model visibility changed"
        CATALOG_SYNCED = "catalog.synced", "models added or removed by the provider"
        USER_ACCESS = "user.access", "account active, staff or superuser changed"
        USER_PERMISSIONS = "user.permissions", "account groups or permissions changed"
        USER_VERIFICATION = "user.verification", "must confirm their address changed"
        USER_IDENTITY = "user.identity", "single sign-on link removed"
        USER_DELETED = "user.deleted", "account deleted"
        GROUP_PERMISSIONS = "group.permissions", "group permissions changed"
        COST_RECONCILED = "cost.reconciled", "unknown outcome reconciled"
        TOKEN_REVOKED = "token.revoked", "API token revoked"
        PROVIDER_KEY_MINTED = "provider_key.minted", "provider key minted"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Whether a person made the change: with actor NULL, tells "a deleted account" (True) from
    # the studio itself, a sign-in's group sync or a command on the server (False).
    had_actor = models.BooleanField(default=False)
    action = models.CharField(max_length=30, choices=Action.choices)
    team = models.ForeignKey(
        "Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(  # the person the change is about, if any
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A sentence with {actor} and {user} where their names go (AuditEvent.text). Rows written
    # before migration 0014 name people in plain text.
    summary = models.CharField(max_length=300)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        # Deleting a user or a team clears the links through this manager, so it may only do that.
        base_manager_name = "objects"
        indexes = [
            # Staff's list, newest first; a team's list for its managers.
            models.Index(fields=["-created_at"], name="audit_created"),
            models.Index(fields=["team", "-created_at"], name="audit_team_created"),
            # The admin's "by actor" filter and its list of the people who made changes.
            models.Index(fields=["actor", "-created_at"], name="audit_actor_created"),
            # The admin's "by action" filter.
            models.Index(fields=["action", "-created_at"], name="audit_action_created"),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.text}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditEventImmutableError("Audit events cannot be changed.")
        self.had_actor = self.actor_id is not None
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditEventImmutableError("Audit events cannot be deleted.")

    @property
    def actor_name(self) -> str:
        """Who made the change, as the list shows it."""
        if self.actor_id is not None:
            return self.actor.get_username()
        return DELETED_ACCOUNT if self.had_actor else "the studio"

    @property
    def user_name(self) -> str:
        return self.user.get_username() if self.user_id is not None else DELETED_ACCOUNT

    @property
    def text(self) -> str:
        """The summary with today's names: a deleted person is "a deleted account"."""
        names = {}
        if "{actor}" in self.summary:
            names["actor"] = self.actor_name
        if "{user}" in self.summary:
            names["user"] = self.user_name
        try:
            return self.summary.format_map(names)
        except (KeyError, ValueError, IndexError, AttributeError):
            return self.summary  # a row from before the placeholders, with a brace of its own


def audit_quote(text) -> str:
    """Text from people (a team's name, a group's) made safe to put in a summary, whose braces
    mark where names go."""
    return str(text).replace("{", "{{").replace("}", "}}")
