"""The one module that speaks HTTP to ImageRouter (or to the bundled simulator).

Every outcome of a generation call becomes either a `GenerationResult` or one of three kinds of
error, named after what happened to the money:

- `NotProcessedError` (connect error, 429): the provider certainly did nothing; safe to retry.
- `RefusedError` (4xx, 5xx, or HTTP 200 with an error body): the provider refused or failed and
  refunded; not charged, do not retry. `InsufficientCreditsError` is its own subclass.
- `OutcomeUnknownError` (read timeout, dropped connection, unreadable body): the provider went on
  and probably charged; never retried automatically.

The call is synchronous: the provider sends 200 and its headers at once, a space every 3 s while it
works, then the JSON. So a failure after work began arrives as 200 with `{"error": ...}`, and the
body, never the status code, is the truth.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)

GENERATIONS_PATH = "/v1/openai/videos/generations"
API_KEYS_PATH = "/v1/api-keys"
CHUNK_BYTES = 64 * 1024
# Bodies up to this size stay in memory; a base64 video spills to a temporary file.
SPOOL_BYTES = 1024 * 1024
# Error bodies are small; never read more than this of a non-200 response.
ERROR_BODY_BYTES = 64 * 1024


class ImageRouterError(Exception):
    """Base of every client error. `message` is safe to show to the person who asked."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status


class NotProcessedError(ImageRouterError):
    """The provider certainly did nothing (connect error, 429). Safe to retry."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message, status=status)
        self.retry_after = retry_after


class RateLimitedError(NotProcessedError):
    """429: try again after `retry_after` seconds."""


class RefusedError(ImageRouterError):
    """The provider refused the request or failed and refunded it: nothing was charged."""

    def __init__(self, message: str, *, status: int | None = None, error_type: str = ""):
        super().__init__(message, status=status)
        self.error_type = error_type


class InsufficientCreditsError(RefusedError):
    """The provider's account cannot cover the call. Not worth retrying: an admin must top up."""


class OutcomeUnknownError(ImageRouterError):
    """The request was sent and no verdict came back. The provider may have charged for it."""


class DownloadError(ImageRouterError):
    """A result URL could not be downloaded intact. Retrying the download is safe and free."""


@dataclass
class GenerationResult:
    """A successful generation: exactly one of `url` and `video` is set.

    `video` is a temporary file holding the decoded base64 result, positioned at 0. It is
    deleted when closed; call `close()` when done with it.
    """

    url: str | None
    video: IO[bytes] | None
    cost: Decimal
    latency_ms: int | None
    created: datetime | None
    revised_prompt: str | None = None

    def close(self) -> None:
        if self.video is not None:
            self.video.close()


@dataclass
class MintedKey:
    """A normal key just minted with a management key. `secret` is shown this once by the
    provider; the caller encrypts it at once and never logs it (repr leaves it out)."""

    provider_id: str
    name: str
    secret: str

    def __repr__(self) -> str:
        return f"<MintedKey {self.provider_id} {self.name!r}>"


class ImageRouterClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        connect_timeout: float = 10,
        read_timeout: float = 900,
        deadline: float = 1200,
    ):
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.deadline = deadline
        self._session = requests.Session()
        # Never resend anything on our own: a resent generation could be charged twice.
        no_retries = HTTPAdapter(max_retries=Retry(total=0, connect=0, read=0, redirect=0))
        self._session.mount("http://", no_retries)
        self._session.mount("https://", no_retries)

    def __repr__(self) -> str:
        return f"<ImageRouterClient {self.base_url}>"

    @classmethod
    def from_settings(cls, *, api_key: str | None = None) -> ImageRouterClient:
        """A client configured from settings, calling with `api_key` (a minted key, or the
        management key) or, by default, IMAGEROUTER_API_KEY."""
        from django.conf import settings

        return cls(
            base_url=settings.IMAGEROUTER_BASE_URL,
            api_key=api_key or settings.IMAGEROUTER_API_KEY,
            connect_timeout=settings.IMAGEROUTER_CONNECT_TIMEOUT,
            read_timeout=settings.IMAGEROUTER_READ_TIMEOUT,
            deadline=settings.IMAGEROUTER_DEADLINE,
        )

    # --- Generation ----------------------------------------------------------------------------

    def generate(
        self,
        *,
        model: str,
        prompt: str = "",
        size: str = "auto",
        seconds: str = "auto",
        response_format: str = "url",
        image: IO[bytes] | str | None = None,
        image_name: str = "image.png",
        image_content_type: str = "application/octet-stream",
    ) -> GenerationResult:
        """Make one paid generation call. Never resends it.

        `image` is an open file (sent as multipart `image[]`) or a URL / data URI string (sent in
        the JSON body). Raises one of the errors described in the module docstring.
        """
        fields = {"model": model, "size": size, "seconds": seconds}
        fields["response_format"] = response_format
        if prompt:
            fields["prompt"] = prompt
        request: dict[str, Any] = {
            # A fresh connection per call: a stale pooled one could fail after the request was
            # sent, which would look like an unknown outcome when nothing was done.
            "headers": {**self._auth_headers(), "Connection": "close"},
            "timeout": (self.connect_timeout, self.read_timeout),
            "stream": True,
        }
        if image is None or isinstance(image, str):
            if image:
                fields["image"] = image
            request["json"] = fields
        else:
            request["data"] = fields
            request["files"] = [("image[]", (image_name, image, image_content_type))]

        started = time.monotonic()
        try:
            response = self._session.post(self.base_url + GENERATIONS_PATH, **request)
        except requests.exceptions.ConnectTimeout:
            raise NotProcessedError("Could not reach ImageRouter (connection timed out).") from None
        except requests.exceptions.ConnectionError as exc:
            if _is_connect_failure(exc):
                raise NotProcessedError(
                    "Could not reach ImageRouter (connection refused)."
                ) from None
            raise OutcomeUnknownError(UNKNOWN_MESSAGE + " (the connection dropped)") from None
        except requests.exceptions.Timeout:
            raise OutcomeUnknownError(UNKNOWN_MESSAGE + " (no answer in time)") from None

        with response:
            if response.status_code == 429:
                raise RateLimitedError(
                    "ImageRouter is rate limiting this studio; it will try again shortly.",
                    status=429,
                    retry_after=_retry_after_seconds(response.headers.get("Retry-After")),
                )
            if response.status_code != 200:
                self._raise_refused(response)
            body = self._read_body(response, started)
        try:
            return _parse_success(body, api_key=self._api_key)
        finally:
            body.close()

    def _read_body(self, response: requests.Response, started: float) -> IO[bytes]:
        """Spool the body to a temporary file, skipping keep-alive spaces, within the deadline."""
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        seen_content = False
        try:
            for chunk in response.raw.stream(CHUNK_BYTES, decode_content=True):
                if time.monotonic() - started > self.deadline:
                    raise OutcomeUnknownError(UNKNOWN_MESSAGE + " (it ran past the deadline)")
                if not seen_content:
                    chunk = chunk.lstrip()
                    seen_content = bool(chunk)
                spool.write(chunk)
        except ImageRouterError:
            spool.close()
            raise
        except (requests.exceptions.RequestException, OSError, Urllib3Error) as exc:
            spool.close()
            logger.warning("generation response broke off: %s", type(exc).__name__)
            if _is_read_timeout(exc):
                raise OutcomeUnknownError(
                    UNKNOWN_MESSAGE + f" (it sent nothing for {self.read_timeout:g} s)"
                ) from None
            raise OutcomeUnknownError(UNKNOWN_MESSAGE + " (the connection dropped)") from None
        spool.seek(0)
        return spool

    def _raise_refused(self, response: requests.Response) -> None:
        raw = response.raw.read(ERROR_BODY_BYTES, decode_content=True) or b""
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict) and error.get("message"):
            _raise_error_body(error, response.status_code, api_key=self._api_key)
        if response.status_code in (401, 403):
            message = "ImageRouter rejected the studio's API key; an admin must check it."
        else:
            message = f"ImageRouter answered HTTP {response.status_code}."
        raise RefusedError(message, status=response.status_code)

    # --- Downloads, catalog and credits -----------------------------------------------------------

    def download(self, url: str, destination: IO[bytes]) -> int:
        """Stream a result URL into `destination` in chunks; return the number of bytes written.

        Raises `DownloadError` for anything but a complete `video/mp4` body: the caller retries.
        """
        try:
            with self._session.get(
                url, stream=True, timeout=(self.connect_timeout, self.read_timeout)
            ) as response:
                if response.status_code != 200:
                    raise DownloadError(f"The video download answered HTTP {response.status_code}.")
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
                if content_type not in ("video/mp4", "application/octet-stream"):
                    raise DownloadError(f"The video download sent {content_type or 'no type'}.")
                written = 0
                for chunk in response.iter_content(CHUNK_BYTES):
                    destination.write(chunk)
                    written += len(chunk)
        except (requests.exceptions.RequestException, Urllib3Error) as exc:
            raise DownloadError(f"The video download broke off ({type(exc).__name__}).") from None
        expected = response.headers.get("Content-Length")
        if expected is not None and expected.isdigit() and int(expected) != written:
            raise DownloadError(
                f"The video download was truncated ({written} of {expected} bytes)."
            )
        if written == 0:
            raise DownloadError("The video download was empty.")
        return written

    def list_models(self, *, output: str = "video") -> dict[str, Any]:
        """GET /v1/models: an object keyed by model id, in the provider's shape."""
        response = self._get("/v1/models", params={"type": output}, auth=False)
        if not isinstance(response, dict):
            raise RefusedError("ImageRouter sent a models list in an unexpected shape.")
        return response

    def credits(self, *, by_api_key: bool = False) -> dict[str, Any]:
        """GET /v1/credits, with the USD amounts as Decimals and, per key, `period_start`,
        `expires_at` and `created_at` as datetimes (None when absent or null: an older answer
        without the per-key limit fields reads as keys without limits)."""
        params = {"by_api_key": "true"} if by_api_key else {}
        payload = self._get("/v1/credits", params=params, auth=True)
        if not isinstance(payload, dict):
            raise RefusedError("ImageRouter sent its credits in an unexpected shape.")
        for key in ("remaining_credits", "credit_usage", "total_deposits"):
            if key in payload:
                payload[key] = _decimal(payload[key])
        rows = payload.get("usage_by_api_key") or []
        if not isinstance(rows, list):
            raise RefusedError("ImageRouter sent its usage per key in an unexpected shape.")
        for row in rows:
            if not isinstance(row, dict):
                raise RefusedError("ImageRouter sent its usage per key in an unexpected shape.")
            for key in ("credit_usage", "period_spend", "spend_limit"):
                if row.get(key) is not None:
                    row[key] = _decimal(row[key])
            if row.get("period_spend") is None and "credit_usage" in row:
                row["period_spend"] = row["credit_usage"]  # no period: its whole usage
            for key in ("period_start", "expires_at", "created_at"):
                row[key] = _timestamp(row.get(key))
        return payload

    # --- Management keys -------------------------------------------------------------------------

    def mint_key(
        self,
        *,
        name: str,
        spend_limit: Decimal | None,
        period: str | None,
        expires_at: datetime | None,
    ) -> MintedKey:
        """POST /v1/api-keys with this client's key as the management key: a new normal key.

        Raises `NotProcessedError` when the provider certainly made no key (no connection, 429),
        `RefusedError` for a 4xx/5xx or an error body (a bad management key, a refused field),
        and `OutcomeUnknownError` when the request went out and no answer came back: a key may
        then exist that the studio will never know (it expires by itself, if asked to).
        """
        body = {
            "name": name,
            "spend_limit": float(spend_limit) if spend_limit is not None else None,
            "spend_limit_period": period,
            "expires_at": _iso(expires_at) if expires_at is not None else None,
        }
        try:
            response = self._session.post(
                self.base_url + API_KEYS_PATH,
                json=body,
                headers={**self._auth_headers(), "Connection": "close"},
                # Minting is quick; a job waits on it, so it must not hang.
                timeout=(self.connect_timeout, 30),
            )
        except requests.exceptions.ConnectTimeout:
            raise NotProcessedError("Could not reach ImageRouter (connection timed out).") from None
        except requests.exceptions.ConnectionError as exc:
            if _is_connect_failure(exc):
                raise NotProcessedError(
                    "Could not reach ImageRouter (connection refused)."
                ) from None
            raise OutcomeUnknownError(MINT_UNKNOWN_MESSAGE) from None
        except requests.exceptions.Timeout:
            raise OutcomeUnknownError(MINT_UNKNOWN_MESSAGE) from None
        if response.status_code == 429:
            raise RateLimitedError(
                "ImageRouter is rate limiting this studio.",
                status=429,
                retry_after=_retry_after_seconds(response.headers.get("Retry-After")),
            )
        try:
            payload = response.json()
        except ValueError:
            payload = None
        error = payload.get("error") if isinstance(payload, dict) else None
        if response.status_code not in (200, 201) or error is not None:
            if isinstance(error, dict) and error.get("message"):
                _raise_error_body(error, response.status_code, api_key=self._api_key)
            if response.status_code in (401, 403):
                raise RefusedError(
                    "ImageRouter refused the management key; an admin must check "
                    "IMAGEROUTER_MANAGEMENT_KEY.",
                    status=response.status_code,
                )
            raise RefusedError(
                f"ImageRouter answered HTTP {response.status_code} to a new key.",
                status=response.status_code,
            )
        if not isinstance(payload, dict):
            raise OutcomeUnknownError(MINT_UNKNOWN_MESSAGE)
        # The documentation does not show this answer's shape: accept the likely names.
        secret = next(
            (payload[k] for k in ("key", "api_key", "secret") if isinstance(payload.get(k), str)),
            "",
        )
        provider_id = payload.get("id", payload.get("api_key_id"))
        if not secret or provider_id is None:
            raise OutcomeUnknownError(MINT_UNKNOWN_MESSAGE)
        return MintedKey(provider_id=str(provider_id), name=str(payload.get("name") or name),
                         secret=secret)  # fmt: skip

    def _get(self, path: str, *, params: dict, auth: bool) -> Any:
        headers = self._auth_headers() if auth else {}
        try:
            response = self._session.get(
                self.base_url + path,
                params=params,
                headers=headers,
                # The catalog and credits are quick reads; a page waiting on them must not hang.
                timeout=(self.connect_timeout, 15),
            )
        except requests.exceptions.RequestException as exc:
            raise NotProcessedError(
                f"Could not reach ImageRouter ({type(exc).__name__})."
            ) from None
        if response.status_code == 429:
            raise RateLimitedError(
                "ImageRouter is rate limiting this studio.",
                status=429,
                retry_after=_retry_after_seconds(response.headers.get("Retry-After")),
            )
        try:
            payload = response.json(parse_float=Decimal)
        except ValueError:
            raise RefusedError(f"ImageRouter sent an unreadable answer to {path}.") from None
        if response.status_code != 200 or (isinstance(payload, dict) and "error" in payload):
            error = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(error, dict) and error.get("message"):
                _raise_error_body(error, response.status_code, api_key=self._api_key)
            raise RefusedError(f"ImageRouter answered HTTP {response.status_code} to {path}.")
        return payload

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}


UNKNOWN_MESSAGE = "Outcome unknown: the provider may have charged for this"
MINT_UNKNOWN_MESSAGE = "ImageRouter did not confirm the new key, so it may or may not exist"
# Stands in for the API key wherever the provider's own text quotes it.
REDACTED = "[redacted]"


def _is_connect_failure(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the TCP connection was never made, so the request was never sent."""
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | ConnectionRefusedError)


def _is_read_timeout(exc: BaseException) -> bool:
    """True when a read waited out its timeout (urllib3's ReadTimeoutError, a socket timeout, or
    requests' own wrapper of either), as opposed to a connection that broke."""
    from urllib3.exceptions import ReadTimeoutError

    return isinstance(
        exc, ReadTimeoutError | TimeoutError | requests.exceptions.ReadTimeout
    ) or isinstance(getattr(exc, "__context__", None), ReadTimeoutError | TimeoutError)


def _raise_error_body(error: dict, status: int, *, api_key: str) -> None:
    # The provider's words go on to Job.error, notices, pages and logs. A provider that quotes
    # the key back (a 401 saying which key it refused, say) must not carry it there.
    message = _redact(str(error.get("message")), api_key)
    error_type = _redact(str(error.get("type") or ""), api_key)
    if message.lower().startswith("insufficient credits"):
        raise InsufficientCreditsError(message, status=status, error_type=error_type)
    raise RefusedError(message, status=status, error_type=error_type)


def _redact(text: str, api_key: str) -> str:
    return text.replace(api_key, REDACTED) if api_key else text


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare enough that the caller's own backoff is fine


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise RefusedError(f"ImageRouter sent an unreadable amount: {value!r}.") from None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamp(value: Any) -> datetime | None:
    """A provider's UTC timestamp ("2026-05-01T00:00:00.000Z"), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _created_at(value: Any) -> datetime | None:
    """`created` is milliseconds in the docs and seconds in the test model: accept both."""
    if not isinstance(value, int | float | Decimal) or value <= 0:
        return None
    seconds = float(value) / 1000 if value > 100_000_000_000 else float(value)
    return datetime.fromtimestamp(seconds, tz=UTC)


def _parse_success(body: IO[bytes], *, api_key: str) -> GenerationResult:
    """Parse a 200 body. The base64 video, if any, is decoded straight to a temporary file."""
    video = tempfile.NamedTemporaryFile(suffix=".mp4")  # named, so ffmpeg can check it
    try:
        skeleton, found_b64 = _extract_b64(body, video)
        try:
            payload = json.loads(skeleton, parse_float=Decimal)
        except ValueError:
            raise OutcomeUnknownError(UNKNOWN_MESSAGE + " (its answer was unreadable)") from None
        if not isinstance(payload, dict):
            raise OutcomeUnknownError(UNKNOWN_MESSAGE + " (its answer was unreadable)")
        if isinstance(payload.get("error"), dict):
            _raise_error_body(payload["error"], 200, api_key=api_key)
        items = payload.get("data")
        item = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}
        url = item.get("url") if isinstance(item.get("url"), str) else None
        if not url and not found_b64:
            raise OutcomeUnknownError(UNKNOWN_MESSAGE + " (its answer held no video)")
        latency = payload.get("latency")
        result = GenerationResult(
            url=None if found_b64 else url,
            video=None,
            cost=_decimal(payload.get("cost", 0)),
            latency_ms=int(latency) if isinstance(latency, int | float | Decimal) else None,
            created=_created_at(payload.get("created")),
            revised_prompt=item.get("revised_prompt"),
        )
    except BaseException:
        video.close()
        raise
    if found_b64:
        video.seek(0)
        result.video = video
    else:
        video.close()
    return result


_B64_KEY = b'"b64_json"'
_WHITESPACE = b" \t\r\n"


class _Buffered:
    """Just enough buffering over a file to scan JSON without loading it whole."""

    def __init__(self, raw: IO[bytes]):
        self.raw = raw
        self.buf = b""
        self.pos = 0

    def fill(self) -> bool:
        more = self.raw.read(CHUNK_BYTES)
        if not more:
            return False
        self.buf = self.buf[self.pos :] + more
        self.pos = 0
        return True

    def byte(self) -> bytes:
        if self.pos >= len(self.buf) and not self.fill():
            return b""
        self.pos += 1
        return self.buf[self.pos - 1 : self.pos]

    def string_rest(self) -> bytes:
        """The raw rest of a JSON string after its opening quote, closing quote included."""
        out = bytearray()
        while True:
            quote = self.buf.find(b'"', self.pos)
            escape = self.buf.find(b"\\", self.pos)
            if escape >= 0 and (quote < 0 or escape < quote) and escape + 1 < len(self.buf):
                out += self.buf[self.pos : escape + 2]
                self.pos = escape + 2
            elif quote >= 0 and (escape < 0 or quote < escape):
                out += self.buf[self.pos : quote + 1]
                self.pos = quote + 1
                return bytes(out)
            else:
                keep = escape if escape >= 0 else len(self.buf)
                out += self.buf[self.pos : keep]
                self.pos = keep
                if not self.fill():
                    raise OutcomeUnknownError(UNKNOWN_MESSAGE + " (its answer was cut short)")

    def base64_pieces(self):
        """Yield the body of a base64 string in large pieces, consuming its closing quote.

        Base64 holds no quotes, so the first quote ends it. A trailing backslash is held back so
        an escape such as "\\/" is never split between two pieces.
        """
        while True:
            quote = self.buf.find(b'"', self.pos)
            if quote >= 0:
                yield self.buf[self.pos : quote]
                self.pos = quote + 1
                return
            end = len(self.buf) - (1 if self.buf.endswith(b"\\") else 0)
            if end > self.pos:
                yield self.buf[self.pos : end]
                self.pos = end
            if not self.fill():
                raise OutcomeUnknownError(UNKNOWN_MESSAGE + " (its answer was cut short)")


def _extract_b64(body: IO[bytes], sink: IO[bytes]) -> tuple[bytes, bool]:
    """Decode the `b64_json` string of a JSON body into `sink` without holding it in memory.

    Returns the body with that string emptied (small enough to json.loads) and whether one was
    found. Strings are skipped whole, so a prompt that mentions "b64_json" is not the key.
    """
    reader = _Buffered(body)
    skeleton = bytearray()
    found = False
    after_key = 0  # 1: just read the "b64_json" key; 2: and the colon after it
    while byte := reader.byte():
        if byte == b'"' and after_key == 2 and not found:
            found = True
            _decode_base64(reader.base64_pieces(), sink)
            skeleton += b'""'
            after_key = 0
        elif byte == b'"':
            token = b'"' + reader.string_rest()
            skeleton += token
            after_key = 1 if token == _B64_KEY else 0
        else:
            skeleton += byte
            if byte not in _WHITESPACE:
                after_key = 2 if after_key == 1 and byte == b":" else 0
    return bytes(skeleton), found


def _decode_base64(pieces, sink: IO[bytes]) -> None:
    carry = b""
    for piece in pieces:
        # JSON may escape "/" as "\\/" and wrap lines with "\\n"; neither is base64.
        piece = piece.replace(b"\\/", b"/").replace(b"\\n", b"").replace(b"\\r", b"")
        piece = carry + piece.translate(None, _WHITESPACE)
        usable = len(piece) - len(piece) % 4
        carry = piece[usable:]
        _write_decoded(piece[:usable], sink)
    _write_decoded(carry, sink)


def _write_decoded(data: bytes, sink: IO[bytes]) -> None:
    try:
        sink.write(base64.b64decode(data, validate=True))
    except binascii.Error:
        raise OutcomeUnknownError(UNKNOWN_MESSAGE + " (its video was corrupt)") from None


_local = threading.local()


def get_client() -> ImageRouterClient:
    """One client per thread, configured from settings (requests sessions are not thread-safe)."""
    from django.conf import settings

    key = (
        settings.IMAGEROUTER_BASE_URL,
        settings.IMAGEROUTER_API_KEY,
        settings.IMAGEROUTER_CONNECT_TIMEOUT,
        settings.IMAGEROUTER_READ_TIMEOUT,
        settings.IMAGEROUTER_DEADLINE,
    )
    if getattr(_local, "key", None) != key:
        _local.client = ImageRouterClient.from_settings()
        _local.key = key
    return _local.client
