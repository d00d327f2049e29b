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


@register.filter
def bytes_size(size) -> str:
    """Bytes in decimal units, as storage is billed: 0 bytes, 940 KB, 12.5 MB, 3.2 GB."""
    if size is None:
        return "—"
    size = int(size)
    if size < 1000:
        return f"{size} byte{'s' if size != 1 else ''}"
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if size >= 100 else f"{size:.1f} {unit}".replace(".0 ", " ")
    raise AssertionError("unreachable")
