"""Each input that once ended in an HTTP 500, by the behaviour that replaced it. They run on
PostgreSQL in CI, where a number too large for a bigint column is an error from the database."""

import json
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import CostEntry, Job
from jobs.numbers import parse_whole_number
from tests.api.helpers import GENERATIONS
from tests.factories import make_entry
from tests.jobs.test_job_page import live_poll

pytestmark = pytest.mark.usefixtures("catalog", "broker_url")

TOO_LONG_FOR_INT = "9" * 5000  # past Python's 4,300-digit limit on int("...")
TOO_LARGE_FOR_BIGINT = str(2**64)


def short(value) -> str:
    """A test id that stays readable for a 5,000-digit value."""
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} chars)"


def nothing_made():
    return Job.objects.count() == 0 and CostEntry.objects.count() == 0


def provider_error(response, status=400) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert isinstance(error["message"], str) and isinstance(error["type"], str)
    return error


# --- the number helper ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["²", "①", "٣", " 5", "5 ", "+5", "-5", "5_0", "", "0x10", TOO_LONG_FOR_INT, None, 5],
    ids=short,
)
def test_only_ascii_digits_make_a_whole_number(text):
    assert parse_whole_number(text) is None


def test_a_whole_number_is_kept_within_its_bounds():
    assert parse_whole_number("007", minimum=1, maximum=10) == 7
    assert parse_whole_number("0", minimum=1) is None
    assert parse_whole_number("11", maximum=10) is None
    assert parse_whole_number(TOO_LARGE_FOR_BIGINT) is None


# --- forms ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", ["²", "①", "5²", TOO_LONG_FOR_INT[:10]], ids=short)
def test_superscript_seconds_is_a_400_not_a_500_on_the_form(alice_client, seconds):
    response = alice_client.post(
        reverse("jobs:create"), {"prompt": "a fox", "model": "ir/test-video", "seconds": seconds}
    )

    assert response.status_code == 200
    assert "whole number of seconds" in response.content.decode()
    assert nothing_made()


# --- the API's JSON and multipart fields ----------------------------------------------------


@pytest.mark.parametrize("seconds", ["²", "①", "٥"], ids=short)
def test_superscript_seconds_is_a_400_not_a_500(api, alice_key, seconds):
    response = api.post(
        alice_key,
        GENERATIONS,
        json={"prompt": "a fox", "model": "ir/test-video", "seconds": seconds},
    )

    assert provider_error(response)["param"] == "seconds"
    assert nothing_made()


def test_superscript_seconds_in_multipart_is_a_400_not_a_500(api, alice_key):
    response = api.post(
        alice_key, GENERATIONS, data={"prompt": "a fox", "model": "ir/test-video", "seconds": "²"}
    )

    assert provider_error(response)["param"] == "seconds"
    assert nothing_made()


@pytest.mark.parametrize(
    "seconds",
    ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", TOO_LONG_FOR_INT, "1e300"],
    ids=short,
)
def test_numbers_json_cannot_hold_are_a_400_not_a_500(api, alice_key, seconds):
    body = '{"prompt": "a fox", "model": "ir/test-video", "seconds": ' + seconds + "}"
    response = api.post(alice_key, GENERATIONS, json=body)

    provider_error(response)
    assert nothing_made()


def test_deep_json_is_refused_in_the_providers_shape(api, alice_key):
    for depth in (33, 100_000):
        body = '{"model": "ir/test-video", "prompt": ' + "[" * depth + "]" * depth + "}"
        response = api.post(alice_key, GENERATIONS, json=body)

        assert "deep" in provider_error(response)["message"]
    assert nothing_made()


def test_shallow_json_with_a_large_data_uri_is_read(api, alice_key):
    body = {
        "model": "ir/test-video",
        "prompt": "a fox",
        "image": "data:image/png;base64," + "A" * 10**6,
    }
    response = api.post(alice_key, GENERATIONS, json=json.dumps(body))

    assert "deep" not in provider_error(response)["message"]


@pytest.mark.parametrize("limit", ["²", TOO_LONG_FOR_INT, TOO_LARGE_FOR_BIGINT, "-1"], ids=short)
def test_a_models_limit_that_is_no_whole_number_is_a_400(api, alice_key, limit):
    response = api.get(alice_key, "/v1/models", data={"limit": limit})

    assert provider_error(response)["param"] == "limit"


# --- query parameters -------------------------------------------------------------------------


def test_poll_with_a_user_id_too_large_for_the_database_is_not_a_500(alice_client, alices_live_job):
    query = live_poll(alice_client, alices_live_job)
    url = reverse("jobs:status", args=[alices_live_job.pk])
    signature = query["p"].partition(".")[2]
    # A good poll first: on PostgreSQL it prepares the poll's statement with a bigint parameter.
    assert alice_client.get(url, query).status_code == 204

    for user_id in (TOO_LARGE_FOR_BIGINT, TOO_LONG_FOR_INT, "²", "-1", "0"):
        response = alice_client.get(url, {**query, "p": f"{user_id}.{signature}"})

        assert response.status_code in (200, 204)


def test_poll_with_bad_numbers_is_not_a_500_even_for_an_anonymous_visitor(client, alices_live_job):
    url = reverse("jobs:status", args=[alices_live_job.pk])
    for value in (TOO_LARGE_FOR_BIGINT, TOO_LONG_FOR_INT, "²", "①"):
        response = client.get(url, {"v": value, "p": f"{value}.{value}", "wait": value})

        # To the log-in page; or 400 for a URL too long to carry back as ?next= (Django's
        # DisallowedRedirect past 16,384 characters).
        assert response.status_code in (302, 400)


def test_poll_with_a_wait_in_superscript_or_too_long_is_ignored(alice_client, alices_live_job):
    url = reverse("jobs:status", args=[alices_live_job.pk])
    for wait in ("²", "①", TOO_LONG_FOR_INT, TOO_LARGE_FOR_BIGINT):
        assert alice_client.get(url, {"v": "stale", "wait": wait}).status_code == 200


@pytest.mark.parametrize(
    "page", ["²", TOO_LONG_FOR_INT, TOO_LARGE_FOR_BIGINT, "-1", "1e400"], ids=short
)
def test_a_page_number_that_is_no_number_shows_a_page(alice_client, admin_client, page):
    assert alice_client.get(reverse("jobs:list"), {"page": page}).status_code == 200
    for name in ("costs:reconciliation", "costs:review"):
        response = admin_client.get(reverse(name), {"page": page, "users_page": page})
        assert response.status_code == 200


@pytest.mark.parametrize(
    "value", ["²", TOO_LONG_FOR_INT, TOO_LARGE_FOR_BIGINT, "99999-01-01"], ids=short
)
def test_review_filters_that_are_no_dates_are_not_a_500(admin_client, value):
    query = {"from": value, "to": value, "user": value, "model": value, "user_sort": value}
    for name in ("costs:review", "costs:entries", "costs:reconciliation"):
        assert admin_client.get(reverse(name), query).status_code in (200, 404)


@pytest.mark.parametrize(
    "header",
    [
        f"bytes={TOO_LONG_FOR_INT}-",
        f"bytes=0-{TOO_LONG_FOR_INT}",
        f"bytes=-{TOO_LONG_FOR_INT}",
        "bytes=٣-",
    ],
    ids=short,
)
def test_a_range_too_long_for_a_number_is_ignored_not_a_500(alice_client, alices_job, header):
    response = alice_client.get(
        reverse("jobs:video", args=[alices_job.pk]), headers={"Range": header}
    )

    assert response.status_code in (200, 206, 416)


# --- NUL characters and lone surrogates -----------------------------------------------------------


@pytest.mark.parametrize("name", ["costs:entries", "costs:export"])
def test_a_nul_in_a_review_filter_is_a_400_not_a_database_error(admin_client, name):
    for query in ({"user": "a\x00b"}, {"model": "a\x00b"}):
        assert admin_client.get(reverse(name), query).status_code == 400


def test_a_nul_in_a_share_link_or_the_session_cookie_is_a_400(client, alice, alices_live_job):
    assert client.get("/s/abc%00def/").status_code == 400
    cookie = 'sessionid="abcdefgh\\000"'  # a quoted cookie's octal escape: a NUL
    url = reverse("jobs:status", args=[alices_live_job.pk])
    for query in ({"v": "running.1", "p": "1.abc"}, {}):
        assert client.get(url, query, HTTP_COOKIE=cookie).status_code == 400


def test_a_nul_under_v1_is_a_400_in_the_providers_shape(api, alice_key):
    provider_error(api.get(alice_key, "/v1/models", data={"name": "a\x00b"}))


def test_a_lone_surrogate_in_json_is_a_400_not_a_500(api, alice_key):
    body = '{"model": "ir/test-video", "prompt": "a fox \\ud800"}'
    response = api.post(alice_key, GENERATIONS + "?async=true", json=body)

    assert "surrogate" in provider_error(response)["message"]
    assert nothing_made()


def test_a_reconciled_amount_that_is_nan_is_refused_not_a_500(admin_client, alice):
    entry = make_entry(
        alice, "ir/test-video", "0", timezone.now(), outcome="unknown", possible=Decimal("0.5")
    )
    url = reverse("costs:reconcile", args=[entry.job_id])
    for amount in ("NaN", "sNaN", "Infinity", "-Infinity"):
        response = admin_client.post(url, {"verdict": "charged", "amount": amount})
        assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.reconciliation == "pending"


def test_a_reconcile_next_that_is_no_path_goes_back_to_the_reconciliation_page(admin_client, alice):
    entry = make_entry(
        alice, "ir/test-video", "0", timezone.now(), outcome="unknown", possible=Decimal("0.5")
    )
    url = reverse("costs:reconcile", args=[entry.job_id])
    for next_url in ("²", "login", "jobs:list", "//evil.example/"):
        response = admin_client.post(url, {"verdict": "nonsense", "next": next_url})
        assert response.status_code == 302
        assert response.url == reverse("costs:reconciliation")
