"""The provider's video models as the studio offers them (the catalog)."""

from django.db import models


class VideoModel(models.Model):
    """One video model from the provider's catalog (`GET /v1/models?type=video`)."""

    class Pricing(models.TextChoices):
        FIXED = "fixed", "fixed"
        CALCULATED = "calculated", "calculated"
        POST_GENERATION = "post_generation", "set after generation"

    class Visibility(models.TextChoices):
        EVERYONE = "everyone", "Everyone"
        STAFF = "staff", "Staff only"
        HIDDEN = "hidden", "Hidden"

    id = models.CharField(primary_key=True, max_length=200)  # the provider's id, e.g. ir/test-video
    name = models.CharField(max_length=200)
    pricing = models.CharField(max_length=20, choices=Pricing.choices)
    price_min = models.DecimalField(max_digits=12, decimal_places=6)
    price_average = models.DecimalField(max_digits=12, decimal_places=6)
    price_max = models.DecimalField(max_digits=12, decimal_places=6)
    seconds = models.JSONField(default=list)  # allowed durations, e.g. [5, 10]
    default_seconds = models.PositiveIntegerField(null=True, blank=True)
    sizes = models.JSONField(default=list)  # e.g. ["1280x720", "720x1280"]; empty means any
    accepts_image = models.BooleanField(default=False)
    synced_at = models.DateTimeField()
    # Set by admins, kept across syncs: who may choose this model on the form.
    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.EVERYONE
    )

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.id

    @property
    def is_free(self) -> bool:
        return self.price_max == 0
