"""The few WSGI helpers the simulator needs: a request wrapper and JSON responses."""

import ipaddress
import json
from http import HTTPStatus
from urllib.parse import parse_qsl


class Request:
    def __init__(self, environ: dict):
        self.environ = environ
        self.method = environ["REQUEST_METHOD"]
        self.path = environ.get("PATH_INFO", "/")
        self.query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        self.content_type = environ.get("CONTENT_TYPE", "")
        self.remote_addr = environ.get("REMOTE_ADDR", "")

    def header(self, name: str, default: str = "") -> str:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"), default)

    def body(self) -> bytes:
        stream = self.environ["wsgi.input"]
        length = int(self.environ.get("CONTENT_LENGTH") or 0)
        return stream.read(length) if length else b""

    def base_url(self) -> str:
        host = self.header("Host") or f"{self.environ['SERVER_NAME']}:{self.environ['SERVER_PORT']}"
        return f"{self.environ.get('wsgi.url_scheme', 'http')}://{host}"

    def bearer_token(self) -> str | None:
        """The API key, or None when the header is missing or carries no key."""
        value = self.header("Authorization").strip()
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


class Response:
    """A status, headers and a body iterable: the shape a WSGI app hands back."""

    def __init__(self, status: int, body=(), headers: list | None = None):
        self.status = status
        self.body = body
        self.headers = headers or []

    def __call__(self, start_response):
        phrase = HTTPStatus(self.status).phrase
        start_response(f"{self.status} {phrase}", self.headers)
        return self.body


def json_response(status: int, data, headers: list | None = None) -> Response:
    payload = json.dumps(data).encode()
    headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Content-Length", str(len(payload))),
        *(headers or []),
    ]
    return Response(status, [payload], headers)


def error_body(message: str, kind: str, **extra) -> dict:
    return {"error": {"message": message, "type": kind, **extra}}


def error_response(status: int, message: str, kind: str, **extra) -> Response:
    return json_response(status, error_body(message, kind, **extra))


def invalid_request(message: str) -> Response:
    return error_response(400, message, "invalid_request_error")


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for anything else."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback
