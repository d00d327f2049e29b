from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def usd(amount) -> str:
    """Dollars with cents, and more digits only when a price needs them: $0.50, $0.0125."""
    if amount is None:
        return "—"
    amount = Decimal(amount)
    cents = amount.quantize(Decimal("0.01"))
    if cents == amount:
        return f"${cents}"
    return f"${amount.quantize(Decimal('0.0001')).normalize():f}"


@register.filter
def minutes(duration) -> int:
    """A timedelta in whole minutes, rounded up: a cool-off of 14:30 reads as 15 minutes."""
    return -(-int(duration.total_seconds()) // 60)
