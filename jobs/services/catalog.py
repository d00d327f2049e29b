"""The model catalog: the provider's video models, kept in the database."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from jobs import imagerouter
from jobs.models import AuditEvent, VideoModel, audit_quote

from .audit import audit_record


def catalog_sync() -> int:
    """Replace the catalog with the provider's video models. Returns how many there are.

    A failed fetch raises and leaves the last good catalog untouched. What the provider says is
    overwritten; what admins set (visibility) is kept. Models added (open to everyone at once)
    or removed, and top prices changed (what a submit holds against budgets), are recorded in
    the audit trail, as a change by the studio.
    """
    models = imagerouter.get_client().list_models(output="video")
    now = timezone.now()
    rows = [_catalog_row(model_id, info, now) for model_id, info in models.items()]
    rows = [row for row in rows if row is not None]
    with transaction.atomic():
        before = dict(VideoModel.objects.values_list("pk", "price_max"))
        VideoModel.objects.exclude(pk__in=[row.pk for row in rows]).delete()
        for row in rows:
            if row.pk in before:
                row.save(update_fields=PROVIDER_FIELDS)
            else:
                row.save()
        after = {row.pk: row.price_max for row in rows}
        _catalog_changes_record(before=before, after=after)
    return len(rows)


def _catalog_changes_record(*, before: dict, after: dict) -> None:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    repriced = sorted(m for m in set(before) & set(after) if before[m] != after[m])
    if not (added or removed or repriced):
        return
    parts = []
    if added:
        parts.append(f"added {', '.join(added)} (open to everyone)")
    if removed:
        parts.append(f"removed {', '.join(removed)}")
    if repriced:
        parts.append(
            "new top price for "
            + ", ".join(f"{m} (${before[m]:.2f} → ${after[m]:.2f})" for m in repriced)
        )
    audit_record(
        action=AuditEvent.Action.CATALOG_SYNCED,
        summary=audit_quote("The provider's catalog " + "; ".join(parts)),
        before={m: str(before[m]) for m in sorted(removed + repriced)},
        after={m: str(after[m]) for m in sorted(added + repriced)},
    )


VISIBILITY_WORDS = {
    VideoModel.Visibility.EVERYONE: "open to everyone",
    VideoModel.Visibility.STAFF: "for staff only",
    VideoModel.Visibility.HIDDEN: "hidden",
}


def model_visibility_set(*, model: VideoModel, visibility: str, by, address=None) -> bool:
    """Who may choose a model on the form and the API: everyone, staff only, or no one. One
    conditional UPDATE naming the visibility it replaces, recorded with who made it. False if
    it was already so (or another admin changed it meanwhile: the page shows theirs)."""
    if visibility not in VideoModel.Visibility.values:
        raise ValueError(f"Unknown visibility {visibility!r}.")
    before = model.visibility
    if before == visibility:
        return False
    with transaction.atomic():
        changed = VideoModel.objects.filter(pk=model.pk, visibility=before).update(
            visibility=visibility
        )
        if not changed:
            return False
        model.visibility = visibility
        audit_record(
            actor=by,
            action=AuditEvent.Action.MODEL_VISIBILITY,
            summary=f"{audit_quote(model.pk)} is now {VISIBILITY_WORDS[visibility]} "
            f"(it was {VISIBILITY_WORDS[before]})",
            before={"model": model.pk, "visibility": before},
            after={"model": model.pk, "visibility": visibility},
            address=address,
        )
    return True


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
