"""API tokens for the ImageRouter-compatible API (/v1/)."""

import hashlib
import uuid

from django.conf import settings
from django.db import models

from .teams import Team


class ApiToken(models.Model):
    """A personal key for the ImageRouter-compatible API (`/v1/`), so a script spends its
    owner's budget under their name instead of the team's master ImageRouter key.

    The key itself is shown once, at creation, and never stored: only its SHA-256 (a key has 256
    random bits, so a plain hash is enough; there is nothing to guess). `prefix` is the key's
    first characters, not secret, so people can tell their keys apart in the list. Revoking sets
    `revoked_at`; the row stays, so the list shows what a key was and when it stopped working.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    # Where its jobs are charged: this team, or its user's personal space (None). A user removed
    # from the team can no longer use it (selectors.api_token_for_key).
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # Every API request looks its key up by this (the unique index answers it).
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Where its jobs' webhooks go when a request names no webhook_url (empty: nowhere).
    webhook_url = models.URLField(max_length=2000, blank=True)
    # The Standard Webhooks signing secret (`whsec_` + base64), shown to its owner once when
    # made or rotated. Kept as it is, not hashed: every delivery is signed with it (an HMAC
    # needs the key itself), and it can sign only this token's webhooks, never spend.
    webhook_secret = models.CharField(max_length=100, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"
        indexes = [
            # The token page: a user's tokens, newest first.
            models.Index(fields=["user", "-created_at"], name="apitoken_user_created"),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def hash_key(key: str) -> str:
        """What the database keeps of a key. A key carries 256 random bits, so a fast hash is
        safe: there is no dictionary to try, unlike with a password."""
        return hashlib.sha256(key.encode()).hexdigest()
