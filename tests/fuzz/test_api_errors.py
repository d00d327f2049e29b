"""Everything under /v1/ answers JSON in the provider's shape, whatever failed and wherever."""

import pytest
from django.test import override_settings

from tests.api.helpers import GENERATIONS
from tests.fuzz.test_headers import FailingMiddleware  # noqa: F401 (named in MIDDLEWARE below)


def provider_error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and isinstance(error["code"], str)
    return error


@pytest.fixture
def no_raise(client):
    client.raise_request_exception = False
    return client


@override_settings(ROOT_URLCONF="tests.fuzz.test_headers")
def test_an_unexpected_exception_in_an_api_view_is_a_json_500(no_raise, db):
    error = provider_error(no_raise.get("/v1/test-only/fails"), 500)

    assert error == {
        "message": "The studio failed to answer this request. The error has been logged; "
        "try again later.",
        "type": "internal_error",
        "code": "internal_server_error",
    }
    assert "RuntimeError" not in str(error)


def test_a_500_from_a_middleware_under_v1_is_json(no_raise, settings, db):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.fuzz.test_headers.FailingMiddleware"]

    assert provider_error(no_raise.get("/v1/middleware-fails"), 500)["type"] == "internal_error"


def test_a_host_not_allowed_under_v1_is_a_json_400(client, db):
    response = client.get("/v1/models", headers={"Host": "evil.example.com"})

    assert provider_error(response, 400)["type"] == "invalid_request_error"


def test_a_404_raised_by_an_api_view_is_json(client, alice_key, monkeypatch, db):
    from django.http import Http404

    from jobs.api import views

    def raises(*args, **kwargs):
        raise Http404("nothing here")

    monkeypatch.setattr(views.selectors, "catalog_models", raises)
    response = client.get("/v1/models", headers={"Authorization": f"Bearer {alice_key}"})

    assert provider_error(response, 404)["type"] == "not_found"


def test_the_wrong_method_is_a_json_405_naming_the_right_one(client, db):
    response = client.put(GENERATIONS)

    assert provider_error(response, 405)["code"] == "method_not_allowed"
    assert response["Allow"] == "POST"
