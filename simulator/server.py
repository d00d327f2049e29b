"""A small threaded HTTP/1.1 server that runs a WSGI app the way Express answers.

wsgiref buffers nothing but it cannot send chunked responses, and the provider's whole wire
behaviour (headers at once, a space every few seconds, then the JSON) is a chunked response
with no Content-Length. So this server:
- sends the status and headers as soon as the app yields its first item, even an empty one;
- without a Content-Length, writes every yielded item as its own chunk and flushes it;
- with a Content-Length, writes the bytes as they are;
- when the body iterator raises AbortConnection, closes the socket without finishing the
  response, which is what a client sees when the provider's connection drops.
"""

import socket
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

SPOOL_IN_MEMORY = 1024 * 1024


class AbortConnection(Exception):
    """Raised by a response body to cut the connection mid-response."""


class WSGIRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ImageRouterSimulator/1"

    def do_request(self):
        started = time.monotonic()
        self.response_status = "-"
        outcome = ""
        try:
            body = self._read_body()
        except ValueError:
            self.send_error(400, "Bad request body")
            return
        try:
            self._run_app(self._environ(body))
        except AbortConnection:
            outcome = " aborted"
            self._abort()
        except (BrokenPipeError, ConnectionResetError):
            outcome = " client went away"
            self.close_connection = True
        finally:
            body.close()
            elapsed = time.monotonic() - started
            path = self.path.split("?", 1)[0]
            print(
                f"{self.command} {path} {self.response_status} {elapsed:.3f}s{outcome}",
                file=sys.stderr,
                flush=True,
            )

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_request

    def log_message(self, format, *args):
        # One line per request is written by do_request; BaseHTTPRequestHandler's own lines
        # would double it (and send_error would log the request line).
        pass

    def _read_body(self):
        body = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body.write(self.rfile.read(size))
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 65536))
                if not chunk:
                    raise ValueError("body shorter than Content-Length")
                body.write(chunk)
                remaining -= len(chunk)
        body.seek(0)
        return body

    def _environ(self, body) -> dict:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, encoding="latin-1"),
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(body_length(body)),
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": body,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = value
        return environ

    def _run_app(self, environ):
        response = {}

        def start_response(status, headers, exc_info=None):
            response["status"], response["headers"] = status, headers

        result = self.server.app(environ, start_response)
        sent_headers = False
        chunked = False
        try:
            for data in result:
                if not sent_headers:
                    chunked = self._send_headers(response["status"], response["headers"])
                    sent_headers = True
                if data and self.command != "HEAD":
                    if chunked:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    else:
                        self.wfile.write(data)
                    self.wfile.flush()
            if not sent_headers:
                chunked = self._send_headers(response["status"], response["headers"])
            if chunked and self.command != "HEAD":
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            if hasattr(result, "close"):
                result.close()

    def _send_headers(self, status: str, headers: list) -> bool:
        """Write the status line and headers; return whether the body goes chunked."""
        self.response_status = status.split(" ", 1)[0]
        names = {name.lower() for name, _ in headers}
        chunked = "content-length" not in names
        lines = [f"HTTP/1.1 {status}", f"Date: {self.date_time_string()}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.wfile.flush()
        return chunked

    def _abort(self):
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def body_length(body) -> int:
    position = body.tell()
    body.seek(0, 2)
    length = body.tell()
    body.seek(position)
    return length


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Benchmarks keep many generations in flight at once; don't refuse connections under load.
    request_queue_size = 256

    def __init__(self, address, app):
        self.app = app
        super().__init__(address, WSGIRequestHandler)


def make_server(host: str, port: int, app) -> SimulatorServer:
    return SimulatorServer((host, port), app)
