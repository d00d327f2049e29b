"""What every request gets: CSRF protection, a size limit with a clear page, security headers."""

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from jobs.models import Job
from tests.factories import form_data

pytestmark = pytest.mark.usefixtures("catalog")

FORM = form_data(prompt="a kite over a beach")


@pytest.fixture
def strict_client(alice):
    """A client that, like a browser, must prove each POST came from one of our pages."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


def csrf_from_hx_headers(html: str) -> str:
    """The token htmx sends with every request it makes, as base.html hands it to htmx."""
    headers = re.search(r"<body hx-headers='([^']+)'", html)[1]
    return json.loads(headers)["X-CSRFToken"]


# --- CSRF ---------------------------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused_with_a_page_that_says_why(strict_client, alice):
    response = strict_client.post(reverse("jobs:create"), FORM)

    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert not Job.objects.filter(owner=alice).exists()


def test_htmx_requests_carry_the_token_from_the_body_hx_headers(strict_client, alice):
    job = Job.objects.create(owner=alice, prompt="wait for me", model="ir/test-video")
    token = csrf_from_hx_headers(strict_client.get(reverse("jobs:detail", args=[job.pk])).text)

    response = strict_client.post(
        reverse("jobs:cancel", args=[job.pk]), HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token
    )

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELED


def test_a_forged_token_is_refused(strict_client, alice):
    job = Job.objects.create(owner=alice, prompt="wait for me", model="ir/test-video")
    strict_client.get(reverse("jobs:detail", args=[job.pk]))

    response = strict_client.post(reverse("jobs:cancel", args=[job.pk]), HTTP_X_CSRFTOKEN="x" * 32)

    assert response.status_code == 403
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED


# --- Oversized and malformed requests -------------------------------------------------------------


def test_a_body_over_the_request_limit_gets_a_clear_page_and_saves_nothing(
    alice_client, alice, settings
):
    settings.REQUEST_MAX_BYTES = 64 * 1024
    image = SimpleUploadedFile("big.png", b"\0" * (200 * 1024), content_type="image/png")

    response = alice_client.post(reverse("jobs:create"), {**FORM, "image": image})

    assert response.status_code == 413
    page = response.content.decode()
    assert "That was too large to accept" in page
    assert "Nothing was saved or charged" in page
    assert not Job.objects.filter(owner=alice).exists()
    assert not any(path.is_file() for path in settings.MEDIA_ROOT.rglob("*"))


def test_a_body_under_the_limit_reaches_the_form(alice_client, alice, settings):
    settings.REQUEST_MAX_BYTES = 64 * 1024
    response = alice_client.post(reverse("jobs:create"), FORM)
    assert response.status_code == 302


def test_a_request_with_too_many_fields_gets_the_bad_request_page(alice_client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 20
    response = alice_client.post(reverse("jobs:create"), {f"f{n}": "x" for n in range(50)})

    assert response.status_code == 400
    assert "The studio could not read that request" in response.content.decode()


# --- Headers ------------------------------------------------------------------------------------


def test_pages_allow_only_the_studios_own_scripts(alice_client):
    response = alice_client.get(reverse("jobs:create"))

    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response["Content-Security-Policy"]


def test_pages_carry_the_security_headers(alice_client):
    response = alice_client.get(reverse("jobs:create"))

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_no_page_has_an_inline_script_or_style(alice_client, alice):
    """The policy would block them; the pages must not need them."""
    job = Job.objects.create(owner=alice, prompt="check me", model="ir/test-video")
    for url in (reverse("jobs:create"), reverse("jobs:list"), reverse("jobs:detail", args=[job.pk]),
                reverse("spending"), reverse("login")):  # fmt: skip
        html = alice_client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert "<style" not in html and " style=" not in html, url
        assert not re.search(r"\son[a-z]+=", html), url  # no onclick= and friends
