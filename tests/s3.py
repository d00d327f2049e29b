"""A real S3-compatible server for tests: moto's server mode on a free loopback port, strict about
presigned URLs as Amazon S3 is.

moto 5.2.5 serves a presigned URL whatever its signature and however long ago it expired (it
checks neither). The studio's promise is that a link to a video stops working once it expires
and cannot be edited into a link to something else, so this server refuses such URLs with S3's
own answers (403 AccessDenied "Request has expired", 403 SignatureDoesNotMatch), checking the
signature with botocore's SigV4 code and the one key pair it knows. Everything else is moto's.

    with S3Server() as server:
        server.client.create_bucket(Bucket="videos")
"""

import time
from calendar import timegm
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from moto.server import ThreadedMotoServer

ACCESS_KEY = "studio-test-key"
SECRET_KEY = "studio-test-secret"
REGION = "us-east-1"


class S3Server(ThreadedMotoServer):
    def __init__(self):
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""
        self.client = None

    def _server_entry(self) -> None:
        """moto's own server (moto.moto_server.threaded_moto_server), its app behind the gate."""
        from moto.moto_server.threaded_moto_server import MotoRequestHandler
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        app = PresignedUrlGate(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    def start(self) -> None:
        super().start()
        host, port = self.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self.client = boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def __enter__(self) -> "S3Server":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def keys(self, bucket: str) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, bucket: str, key: str) -> bytes:
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()


class PresignedUrlGate:
    """WSGI middleware: a request signed in its query string (a presigned URL) must be unexpired
    and carry the signature of ACCESS_KEY/SECRET_KEY, or it gets S3's 403."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if "X-Amz-Signature" in query:
            refusal = presigned_url_refusal(environ, query)
            if refusal:
                code, message = refusal
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?>'
                    f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
                ).encode()
                start_response(
                    "403 Forbidden",
                    [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
                )
                return [body]
        return self.app(environ, start_response)


def presigned_url_refusal(environ, query) -> tuple[str, str] | None:
    """(code, message) as S3 answers when the URL has expired or its signature does not match
    what the secret key signs for this method, host, path and query; None when it is good."""
    signed_at = timegm(time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ"))
    if time.time() > signed_at + int(query["X-Amz-Expires"][0]):
        return "AccessDenied", "Request has expired"
    if query["X-Amz-Credential"][0].split("/")[0] != ACCESS_KEY:
        return "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist."
    if expected_signature(environ, query) != query["X-Amz-Signature"][0]:
        return "SignatureDoesNotMatch", "The request signature we calculated does not match."
    return None


def expected_signature(environ, query) -> str:
    """SigV4 over the request as received: the raw path and query (less the signature), the
    Host header, and UNSIGNED-PAYLOAD, at the time the URL claims it was signed."""
    target = urlsplit(environ["REQUEST_URI"])
    unsigned_query = "&".join(
        part for part in target.query.split("&") if not part.startswith("X-Amz-Signature=")
    )
    url = f"http://{environ['HTTP_HOST']}{target.path}?{unsigned_query}"
    request = AWSRequest(method=environ["REQUEST_METHOD"], url=url, headers={})
    request.context["timestamp"] = query["X-Amz-Date"][0]
    _, _, region, service, _ = query["X-Amz-Credential"][0].split("/")
    auth = S3SigV4QueryAuth(
        Credentials(ACCESS_KEY, SECRET_KEY), service, region, expires=int(query["X-Amz-Expires"][0])
    )
    canonical_request = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical_request), request)
