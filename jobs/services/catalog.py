"""The model catalog: the provider's video models, kept in the database."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from jobs import imagerouter
from jobs.models import VideoModel


def catalog_sync() -> int:
    """Replace the catalog with the provider's video models. Returns how many there are.

    A failed fetch raises and leaves the last good catalog untouched. What the provider says is
    overwritten; what admins set (visibility) is kept.
    """
    models = imagerouter.get_client().list_models(output="video")
    now = timezone.now()
    rows = [_catalog_row(model_id, info, now) for model_id, info in models.items()]
    rows = [row for row in rows if row is not None]
    with transaction.atomic():
        VideoModel.objects.exclude(pk__in=[row.pk for row in rows]).delete()
        known = set(VideoModel.objects.values_list("pk", flat=True))
        for row in rows:
            if row.pk in known:
                row.save(update_fields=PROVIDER_FIELDS)
            else:
                row.save()
    return len(rows)


# Everything the provider decides; VideoModel.visibility is the studio's own.
PROVIDER_FIELDS = [
    "name", "pricing", "price_min", "price_average", "price_max", "seconds", "default_seconds",
    "sizes", "accepts_image", "synced_at",
]  # fmt: skip


def _catalog_row(model_id: str, info: dict, now) -> VideoModel | None:
    if "video" not in (info.get("output") or ["video"]):
        return None
    providers = info.get("providers") or [{}]
    pricing = providers[0].get("pricing") or {}
    kind = pricing.get("type", VideoModel.Pricing.FIXED)
    if kind == VideoModel.Pricing.FIXED:
        low = average = high = Decimal(str(pricing.get("value", 0)))
    else:
        band = pricing.get("range") or {}
        low, average, high = (Decimal(str(band.get(key, 0))) for key in ("min", "average", "max"))
    params = info.get("supported_params") or {}
    return VideoModel(
        id=model_id,
        name=providers[0].get("model_name") or model_id,
        pricing=kind if kind in VideoModel.Pricing.values else VideoModel.Pricing.FIXED,
        price_min=low,
        price_average=average,
        price_max=high,
        seconds=[int(s) for s in info.get("seconds") or []],
        default_seconds=info.get("default_seconds"),
        sizes=list(info.get("sizes") or []),
        accepts_image=bool(params.get("edit")),
        synced_at=now,
    )
