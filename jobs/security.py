"""Who is asking (the client's address, as far as the proxies we trust can tell), and which
addresses the studio may reach on someone's behalf."""

import ipaddress
import socket

import urllib3
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


class HostNotFoundError(Exception):
    pass


class PrivateAddressError(Exception):
    pass


def public_address(host: str, port: int) -> str:
    """The address to connect to for `host`, after checking every address the name has.

    The rule for every URL the studio fetches or posts to on someone's behalf (image URLs,
    webhooks): all of the name's addresses must be public, not loopback, private, link-local
    (cloud metadata) or reserved, unless GATEWAY_IMAGE_URLS_PRIVATE allows them. The caller
    connects to the address returned, so a second DNS answer cannot point it elsewhere.
    HostNotFoundError when the name does not resolve, PrivateAddressError when it is refused.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise HostNotFoundError(host) from None
    addresses = [info[4][0] for info in infos]
    if not settings.GATEWAY_IMAGE_URLS_PRIVATE:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
                ip = ip.ipv4_mapped
            if not ip.is_global:
                raise PrivateAddressError(host)
    return addresses[0]


def pinned_pool(parts, address: str, port: int, *, timeout: urllib3.Timeout):
    """A one-connection urllib3 pool to `address` (checked by public_address) for the URL split
    into `parts`: it connects to that address, never to a second DNS answer, and for https
    verifies the certificate for the URL's own host name. No retries; redirects are the
    caller's to refuse. The path to request is `request_path(parts)`."""
    options = {"timeout": timeout, "retries": False, "maxsize": 1}
    if parts.scheme.lower() == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            port,
            server_hostname=parts.hostname,
            assert_hostname=parts.hostname,
            cert_reqs="CERT_REQUIRED",
            **options,
        )
    return urllib3.HTTPConnectionPool(address, port, **options)


def request_path(parts) -> str:
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def password_login_allowed(username: str | None) -> bool:
    """May this username log in (or, later, reset its password) with a password? Everyone may,
    unless PASSWORD_LOGIN=false: then only the break-glass staff account named in
    BREAK_GLASS_USERNAME, so that staff can still get in while the identity provider is down."""
    if settings.PASSWORD_LOGIN:
        return True
    return bool(username) and username == settings.BREAK_GLASS_USERNAME


class PasswordLoginPolicyBackend:
    """Refuses a password for anyone but the break-glass account while PASSWORD_LOGIN=false, on
    every form that checks one (the log-in page and the admin's alike). It comes before
    ModelBackend, and PermissionDenied stops authenticate() there, so a right password is
    refused too. The break-glass account must also be staff."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        from django.contrib.auth import get_user_model
        from django.core.exceptions import PermissionDenied

        if password is None or settings.PASSWORD_LOGIN:
            return None
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if not password_login_allowed(username):
            raise PermissionDenied("Password log-in is turned off.")
        if not get_user_model().objects.filter(username=username, is_staff=True).exists():
            raise PermissionDenied("The break-glass account must be staff.")
        # No get_user: Django's force_login() and session checks take the first backend that
        # has one, and this one never keeps a session.
        return None
