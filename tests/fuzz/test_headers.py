"""Every kind of response carries the security headers the README promises, whichever layer of
the stack made it: a page, a fragment, a file, the poll's 204, a redirect, the 4xx pages, the
413, a 500 from a view or from a middleware, and the API's JSON."""

import pytest
from csp.decorators import csp_exempt
from django.http import HttpResponse
from django.test import override_settings
from django.urls import path, reverse
from django.views.decorators.clickjacking import xframe_options_exempt

from tests.api.helpers import GENERATIONS
from tests.jobs.test_job_page import live_poll
from videostudio.headers import content_security_policy
from videostudio.urls import urlpatterns as studio_urlpatterns


def failing_view(request):
    raise RuntimeError("a view that fails")


def failing_api_view(request):
    raise RuntimeError("an API view that fails")


@csp_exempt()
@xframe_options_exempt
def exempt_view(request):
    return HttpResponse("may be framed")


urlpatterns = [
    path("test-only/fails/", failing_view),
    path("v1/test-only/fails", failing_api_view),
    path("test-only/exempt/", exempt_view),
    *studio_urlpatterns,
]


class FailingMiddleware:
    """Raises for one path, as a bug in a middleware would."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.endswith("/middleware-fails"):
            raise RuntimeError("a middleware that fails")
        return self.get_response(request)


def assert_secured(response):
    assert response["Content-Security-Policy"] == content_security_policy()
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] in ("same-origin", "no-referrer")


@pytest.fixture
def no_raise(client):
    client.raise_request_exception = False
    return client


def test_a_page_and_an_htmx_fragment(alice_client, alice, alices_live_job):
    assert_secured(alice_client.get(reverse("jobs:list")))
    assert_secured(alice_client.get(reverse("jobs:list"), headers={"HX-Request": "true"}))
    assert_secured(alice_client.get(reverse("jobs:status", args=[alices_live_job.pk])))


def test_a_video_by_get_and_by_head(alice_client, alices_job):
    for method in (alice_client.get, alice_client.head):
        response = method(reverse("jobs:video", args=[alices_job.pk]))
        assert response.status_code == 200
        assert_secured(response)


def test_the_polls_204(alice_client, alices_live_job):
    query = live_poll(alice_client, alices_live_job)
    response = alice_client.get(reverse("jobs:status", args=[alices_live_job.pk]), query)

    assert response.status_code == 204
    assert_secured(response)


def test_a_redirect(client, alices_job):
    response = client.get(reverse("jobs:list"))

    assert response.status_code == 302
    assert_secured(response)


def test_a_404_and_a_403_csrf_failure(alice_client, db):
    assert_secured(alice_client.get("/no/such/page/"))
    alice_client.handler.enforce_csrf_checks = True
    response = alice_client.post(reverse("jobs:create"), {"prompt": "x"})

    assert response.status_code == 403
    assert_secured(response)


def test_a_400_for_a_host_not_allowed(client, db):
    response = client.get("/", headers={"Host": "evil.example.com"})

    assert response.status_code == 400
    assert_secured(response)


def test_the_413_for_a_body_too_large(client, settings, db):
    settings.REQUEST_MAX_BYTES = 100
    for url in ("/accounts/login/", GENERATIONS):
        response = client.post(url, {"prompt": "x" * 1000})

        assert response.status_code == 413
        assert_secured(response)


@override_settings(ROOT_URLCONF=__name__)
def test_a_500_from_a_view(no_raise, db):
    response = no_raise.get("/test-only/fails/")

    assert response.status_code == 500
    assert_secured(response)


def test_a_500_from_a_middleware(no_raise, settings, db):
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[:-1],
        f"{__name__}.FailingMiddleware",
        settings.MIDDLEWARE[-1],
    ]
    for url in ("/jobs/middleware-fails", "/v1/middleware-fails"):
        response = no_raise.get(url)

        assert response.status_code == 500
        assert_secured(response)


def test_the_apis_json_and_its_errors(client, alice_key, db):
    auth = {"Authorization": f"Bearer {alice_key}"}
    for response in (
        client.get("/v1/models", headers=auth),
        client.get("/v1/models"),  # 401
        client.get("/v1/openapi.json"),
    ):
        assert response["Content-Type"] == "application/json"
        assert_secured(response)


@override_settings(ROOT_URLCONF=__name__)
def test_a_view_exempt_from_the_csp_and_framing_stays_exempt(client, db):
    response = client.get("/test-only/exempt/")

    assert "Content-Security-Policy" not in response
    assert "X-Frame-Options" not in response
    assert response["X-Content-Type-Options"] == "nosniff"
