"""Teams, and who is in them and in what role (their changes are recorded: models/audit.py)."""

import uuid

from django.conf import settings
from django.db import models

from .catalog import VideoModel


class Team(models.Model):
    """A group of people who share their videos and a budget. Staff create teams."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    # Staff choose which models a team may use: every model visible to everyone (the default),
    # or only those listed in `allowed_models`.
    all_models = models.BooleanField(
        default=True,
        help_text="Members may use every model visible to everyone. Untick to allow only the "
        "models chosen below.",
    )
    allowed_models = models.ManyToManyField(VideoModel, blank=True, related_name="teams")
    # Single sign-on: people whose groups claim holds `idp_group` are members of this team, and
    # those whose claim holds `idp_manager_group` are managers, synced at every sign-in
    # (services.identity). Empty: the identity provider never touches the team.
    idp_group = models.CharField(
        "identity provider group",
        max_length=255,
        blank=True,
        help_text="Members of this group at the identity provider are made members of the team "
        "when they sign in with single sign-on, and removed when they leave it. Empty: none.",
    )
    idp_manager_group = models.CharField(
        "identity provider manager group",
        max_length=255,
        blank=True,
        help_text="Members of this group at the identity provider are made managers of the team "
        "when they sign in with single sign-on. Empty: none.",
    )
    # Retention: how long the team's videos are kept (services.retention). Empty follows the
    # studio's RETENTION_DAYS; 0 keeps them for ever.
    retention_days = models.PositiveIntegerField(
        "retention (days)",
        null=True,
        blank=True,
        help_text="Days the team's videos, posters and input images are kept before they are "
        "deleted (starred videos are kept for ever). Empty: the studio's default "
        "(RETENTION_DAYS). 0: keep for ever. Shortening it deletes older videos at the next "
        "sweep, without the seven days' warning.",
    )
    # Storage quota, in gigabytes (10^9 bytes): a team at or over it cannot start new videos.
    storage_quota_gb = models.DecimalField(
        "storage quota (GB)",
        max_digits=15,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="New videos are refused while the team's files take this much or more "
        "(1 GB = 1,000,000,000 bytes). Empty: no quota.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def effective_retention_days(self) -> int | None:
        """Days its videos are kept: its own setting, else the studio's; None for ever."""
        if self.retention_days is None:
            return settings.RETENTION_DAYS
        return self.retention_days or None

    @property
    def storage_quota_bytes(self) -> int | None:
        if self.storage_quota_gb is None:
            return None
        return int(self.storage_quota_gb * 1_000_000_000)

    @property
    def label(self) -> str:
        """How sentences name it: "Design team", or "Marketing Team" as it is."""
        return self.name if self.name.lower().endswith("team") else f"{self.name} team"


class Membership(models.Model):
    """A user's place in a team: a member, or a manager who steers the team's budget and sees
    its spend review. Deleting the row takes away the user's access to the team's videos."""

    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        MANAGER = "manager", "Manager"

    class Source(models.TextChoices):
        # Made by hand in the studio (admin or a manager's page).
        STUDIO = "studio", "Added in the studio"
        # Kept in step with the identity provider's groups at every sign-in; a sync never
        # touches memberships made in the studio.
        IDENTITY_PROVIDER = "idp", "From the identity provider"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.STUDIO)
    # The team the generate form and the API charge by default.
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name"]
        constraints = [
            # Every visibility check asks "is this user in this team?" with this index.
            models.UniqueConstraint(fields=["team", "user"], name="membership_team_user"),
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(is_default=True), name="membership_one_default"
            ),
        ]
        indexes = [
            # A user's teams: the form's "Charge to", the galleries' menu.
            models.Index(fields=["user"], name="membership_user"),
        ]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.role})"

    @property
    def is_manager(self) -> bool:
        return self.role == self.Role.MANAGER
