"""Groups of jobs made together: a comparison of models, variations of one, a batch."""

import uuid

from django.conf import settings
from django.db import models


class JobGroup(models.Model):
    """Jobs submitted as one: accepted together or not at all, their holds placed in one
    transaction at every budget level (services.groups.job_group_create).

    Every job of a group is charged to the same place (`team`, None for the owner's personal
    space) by the same owner, so the group is seen by exactly those who see its jobs
    (selectors.visible_to). A group counts as one against JOB_ACTIVE_LIMIT while any of its jobs
    is queued or running (services.limits.active_jobs_check).
    """

    class Kind(models.TextChoices):
        COMPARISON = "comparison", "Comparison"
        VARIATIONS = "variations", "Variations"
        BATCH = "batch", "Batch"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # As on Job: None once its maker deleted their account.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="job_groups"
    )
    # Where every one of its jobs is charged (Job.team holds the same value on each job).
    team = models.ForeignKey(
        "Team", null=True, blank=True, on_delete=models.PROTECT, related_name="job_groups"
    )
    # The API token that submitted it, if any (each job carries it too, for the token's budget).
    token = models.ForeignKey(
        "ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="job_groups"
    )
    # The secret of the group's one share link (services.sharing); None when not shared.
    share_token = models.CharField(max_length=64, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # A person's groups, newest first (the account export, the admin).
            models.Index(fields=["owner", "-created_at"], name="jobgroup_owner_created"),
            # A team's groups, newest first (the admin's filter by team).
            models.Index(fields=["team", "-created_at"], name="jobgroup_team_created"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.id}"

    # How many jobs each kind may hold: the 2 to 6 models, 2 to 8 runs, 1 to 100 rows.
    SIZES = {
        Kind.COMPARISON: (2, 6),
        Kind.VARIATIONS: (2, 8),
        Kind.BATCH: (1, 100),
    }
