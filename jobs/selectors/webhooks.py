"""Webhook deliveries: a person's own (those of their API tokens' jobs), newest first."""

from django.http import Http404

from jobs.models import WebhookDelivery

RECENT_DELIVERIES = 25


def deliveries_for_user(*, user, limit: int = RECENT_DELIVERIES) -> list[WebhookDelivery]:
    """The latest deliveries of the user's tokens (webhookdelivery_token, per token)."""
    return list(
        WebhookDelivery.objects.filter(token__user=user)
        .select_related("token", "job")
        .order_by("-created_at")[:limit]
    )


def delivery_get_for_user(*, user, delivery_id) -> WebhookDelivery:
    """One of the user's own deliveries, or 404, as if anyone else's did not exist."""
    delivery = (
        WebhookDelivery.objects.filter(pk=delivery_id, token__user=user)
        .select_related("token")
        .first()
    )
    if delivery is None:
        raise Http404("No such delivery.")
    return delivery
