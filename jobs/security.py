"""Who is asking: the client's address, as far as the proxies we trust can tell."""

from django.conf import settings


def client_ip(request) -> str | None:
    """The client's address for login throttling.

    With no proxy in front, REMOTE_ADDR. Behind TRUSTED_PROXY_COUNT proxies that each append the
    address they saw to X-Forwarded-For, the entry that many places from the right: anything to
    its left was written by the client and cannot be trusted.
    """
    count = settings.TRUSTED_PROXY_COUNT
    if count > 0:
        forwarded = [
            part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        ]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= count:
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR")
