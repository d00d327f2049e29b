"""The ImageRouter keys the studio mints with a management key: one per team and one per person
(for their personal space), each capped at the provider by the budget of the place it serves."""

import uuid

from django.conf import settings
from django.db import models

from .teams import Team


class ProviderKey(models.Model):
    """One normal ImageRouter key minted for one place (a team, or a person's personal space)
    and one budget window.

    ```
    MINTING ──secret saved──▶ ACTIVE ──period over / budget changed / refused──▶ retired
       └──the mint failed──▶ (row deleted: the next job mints again)
    ```
    A MINTING row is the claim on minting: the unique constraint below lets one caller per place
    and window insert it, so two workers needing the key at once mint one (services/
    provider_keys.py). The secret is stored encrypted (jobs/secrets.py) and never leaves the
    worker's memory except in the Authorization header; nothing here shows it.
    """

    class Status(models.TextChoices):
        MINTING = "minting", "being minted"
        ACTIVE = "active", "active"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The place it serves, as the budgets' roll-up names it: "team:<id>" or "user:<id>".
    place = models.CharField(max_length=120)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="provider_keys"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="provider_keys",
    )
    name = models.CharField(max_length=200)  # as the provider's dashboard shows it
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.MINTING)
    # The provider's id for the key (`api_key_id` in its credits report).
    provider_id = models.CharField(max_length=100, blank=True)
    secret_encrypted = models.TextField(blank=True, editable=False)

    # The cap the provider enforces: USD in each `period` (None: no cap; a period of None with
    # a cap is a lifetime cap; "" is no period). Minted mid-period, it is the budget less what the place has
    # already spent in that period, so both keys together never allow more than the budget.
    spend_limit = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    period = models.CharField(max_length=5, blank=True)
    # The budget it follows, as it was when minted: a job that finds the budget changed retires
    # the key and mints another.
    budget_limit = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    budget_period = models.CharField(max_length=5)
    # The budget period it serves, [window_start, window_end), and when the provider stops
    # accepting it: a little after the window ends, so a call begun just before still works.
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    expires_at = models.DateTimeField()

    # The mint's claim: whoever holds `claim` may save the secret. A claim older than
    # services.provider_keys.MINT_STALE may be taken over (its minter is presumed dead).
    claim = models.UUIDField(default=uuid.uuid4, editable=False)
    minting_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    minted_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_because = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One live key per place and window: racing workers meet here, and one mints.
            models.UniqueConstraint(
                fields=["place", "window_start"],
                condition=models.Q(retired_at__isnull=True),
                name="providerkey_one_live_per_window",
            ),
        ]
        indexes = [
            # A job's question: the live key of its place whose window holds now.
            models.Index(
                fields=["place", "-window_start"],
                condition=models.Q(retired_at__isnull=True),
                name="providerkey_live_place",
            ),
            # The renewal pass: live keys whose window ends soon.
            models.Index(
                fields=["window_end"],
                condition=models.Q(retired_at__isnull=True),
                name="providerkey_live_window_end",
            ),
        ]

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"<ProviderKey {self.pk} {self.name!r}>"

    @property
    def limit_words(self) -> str:
        if self.spend_limit is None:
            return "no cap"
        per = {"day": "a day", "week": "a week", "month": "a month"}
        return f"${self.spend_limit:.2f} {per.get(self.period, 'in all')}"
