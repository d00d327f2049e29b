"""The one module that POSTs to webhook receivers: API callers' job webhooks and the staff's
budget-alert hooks, as jobs/imagerouter.py is the one that speaks to the provider.

- Signing follows the Standard Webhooks specification (standardwebhooks.com): the headers
  `webhook-id`, `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`
  (`v1,` + base64 of HMAC-SHA256 over `id.timestamp.body`, keyed with the secret's bytes), so
  a receiver verifies with `standardwebhooks.Webhook(secret).verify(body, headers)`.
- A receiver is reached the way image URLs are fetched (jobs/security.public_address): http(s)
  only, every address of the host public unless GATEWAY_IMAGE_URLS_PRIVATE, the connection made
  to the checked address (DNS is asked again at every attempt, since it may change), no proxy
  from the environment, no redirects followed, short timeouts, and at most RESPONSE_CAP_BYTES of
  the answer read (only to show a person what came back).
- post() never raises for the network: it returns what happened, for the delivery's log.
"""

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

from jobs.security import (
    HostNotFoundError,
    PrivateAddressError,
    pinned_pool,
    public_address,
    request_path,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the marker, not a secret
SECRET_BYTES = 24  # 192 bits, as Svix's own secrets
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 10
RESPONSE_CAP_BYTES = 2048
URL_MAX_LENGTH = 2000
USER_AGENT = "VideoStudio-Webhooks/1"


class WebhookUrlError(Exception):
    """A URL the studio will not post to, with the reason in words for the person who gave it."""


class BlockedAddressError(WebhookUrlError):
    """Its host is (now) a private address: not worth retrying."""


@dataclass(frozen=True)
class Outcome:
    status_code: int | None  # None: no HTTP answer (see error)
    error: str  # empty on an HTTP answer
    duration_ms: int
    blocked: bool = False  # the address is not allowed (retrying will not help)

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header's value for one attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def url_check(url: str) -> str:
    """`url` stripped, once it is an http(s) URL whose host resolves to allowed addresses only;
    WebhookUrlError saying why not."""
    url = url.strip()
    if len(url) > URL_MAX_LENGTH:
        raise WebhookUrlError(f"it is longer than {URL_MAX_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise WebhookUrlError(
            "it must be an http:// or https:// URL, such as https://example.com/hooks"
        )
    _target(parts)
    return url


def post(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST `body` to `url` once, to the address checked now. What happened, never an error."""
    started = time.monotonic()

    def took() -> int:
        return round((time.monotonic() - started) * 1000)

    parts = urlsplit(url)
    try:
        address, port = _target(parts)
    except BlockedAddressError as exc:
        return Outcome(None, f"Not sent: {exc}.", took(), blocked=True)
    except WebhookUrlError as exc:  # the name did not resolve: perhaps only for now
        return Outcome(None, f"Not sent: {exc}.", took())
    timeout = urllib3.Timeout(
        connect=CONNECT_TIMEOUT_SECONDS,
        read=READ_TIMEOUT_SECONDS,
        total=CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS,  # a slow drip cannot hold it longer
    )
    pool = pinned_pool(parts, address, port, timeout=timeout)
    path = request_path(parts)
    sent_headers = {
        "Host": parts.netloc.rsplit("@", 1)[-1],
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **headers,
    }
    try:
        response = pool.urlopen(
            "POST", path, body=body, headers=sent_headers, redirect=False, preload_content=False
        )
        try:
            response.read(RESPONSE_CAP_BYTES)  # enough to finish a small answer, never more
        except urllib3.exceptions.HTTPError:
            pass  # the status line is what counts
        finally:
            response.release_conn()
        return Outcome(response.status, "", took())
    except urllib3.exceptions.TimeoutError:
        return Outcome(None, f"No answer within {READ_TIMEOUT_SECONDS} seconds.", took())
    except urllib3.exceptions.HTTPError as exc:
        reason = getattr(exc, "reason", None) or exc
        return Outcome(None, f"Could not connect: {reason}"[:500], took())
    finally:
        pool.close()


def _target(parts) -> tuple[str, int]:
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise WebhookUrlError("its port is not a number from 0 to 65535") from None
    try:
        return public_address(parts.hostname, port), port
    except HostNotFoundError:
        raise WebhookUrlError(f"its host {parts.hostname!r} was not found") from None
    except PrivateAddressError:
        raise BlockedAddressError(
            f"the studio posts webhooks only to public addresses, and {parts.hostname} is not one"
        ) from None
