"""What the studio keeps about a person's account: the identity provider's name for them,
their address's confirmation, and what they want to be emailed about."""

from django.conf import settings
from django.db import models


class ExternalIdentity(models.Model):
    """A person at the identity provider (its issuer and their `sub`), tied to the studio account
    they sign in to. Matching by this, not by email, means a changed address at the provider
    never moves someone to another account."""

    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Every single sign-on looks its person up by issuer and subject.
            models.UniqueConstraint(fields=["issuer", "subject"], name="external_identity_sub"),
        ]

    def __str__(self):
        return f"{self.subject} at {self.issuer}"


class AccountEmail(models.Model):
    """What the studio knows of a user's email address beyond `User.email`: whether its owner
    proved they read it (by following a link sent to it), and whether the account waits for
    that before it may log in (sign-up with SIGNUP_EMAIL_VERIFICATION on).

    A user without a row has never confirmed an address and waits for nothing, as every account
    made before email verification existed."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="account_email",
    )
    # The address last confirmed by a link; the user's address is confirmed while they match.
    verified_email = models.EmailField(max_length=254, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    # Signed up with verification on and not confirmed yet: log-in is refused until then.
    must_verify = models.BooleanField(default=False)

    def __str__(self):
        return f"{self.user} <{self.verified_email or 'unconfirmed'}>"

    @property
    def is_verified(self) -> bool:
        return bool(self.verified_email) and (
            self.verified_email.lower() == (self.user.email or "").lower()
        )


class AlertPreferences(models.Model):
    """What a person wants to be emailed about (the notification-settings page). One row per
    user, made the first time they save the page; until then the defaults below apply
    (selectors.alert_preferences_for). Choices a person is not offered (team alerts for a
    non-manager, the organization's for non-staff) are kept but not acted on."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_preferences"
    )
    # A video of theirs is ready, or failed (web and API-token jobs alike; never a cancel).
    job_ready = models.BooleanField(default=True)
    job_failed = models.BooleanField(default=True)
    # Videos of theirs that retention deletes within seven days (a daily email, when any).
    expiry_warning = models.BooleanField(default=True)
    # Budget thresholds (50/80/100%): their own budgets (personal, in a team, API tokens),
    budget_own = models.BooleanField(default=True)
    # the teams they manage (the team's budget and its members'), for managers,
    budget_teams = models.BooleanField(default=True)
    # the organization's, for staff.
    budget_organization = models.BooleanField(default=True)
    # Staff: a daily list of unknown-outcome jobs still to check (only on days with some).
    unknown_summary = models.BooleanField(default=True)
    # Managers and staff: a weekly spend digest, on Mondays. Opt-in.
    weekly_digest = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "alert preferences"
        verbose_name_plural = "alert preferences"

    def __str__(self):
        return f"Alert preferences of {self.user}"
