"""The API tokens page: make one (shown once), list them, revoke one, and what revoking does."""

import hashlib
import re

import pytest
from django.urls import reverse

from jobs.models import ApiToken

pytestmark = pytest.mark.usefixtures("catalog")

KEY = re.compile(r'value="(vst_[A-Za-z0-9_-]{43})"')


def create_token(client, name):
    response = client.post(reverse("api_tokens"), {"name": name})
    assert response.status_code == 200
    return response, KEY.search(response.content.decode())


def test_the_header_links_to_the_token_page(alice_client):
    page = alice_client.get(reverse("jobs:list")).content.decode()

    assert f'href="{reverse("api_tokens")}">API tokens</a>' in page


def test_a_new_token_is_shown_once_and_stored_only_as_a_hash(alice_client, alice):
    response, match = create_token(alice_client, "render script")

    assert match, response.content.decode()
    key = match[1]
    assert "Copy it now: you won't see it again." in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get(user=alice)
    assert token.name == "render script"
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert token.prefix == key[:12]
    assert key not in str(list(ApiToken.objects.values()))  # nowhere in the row
    again = alice_client.get(reverse("api_tokens")).content.decode()
    assert key not in again
    assert f"{token.prefix}…" in again and "render script" in again


def test_a_token_needs_a_name(alice_client):
    response, match = create_token(alice_client, "  ")

    assert match is None
    assert "Give the token a name" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_the_list_shows_when_each_token_was_last_used(alice_client, api, alice, token_for):
    key = token_for(alice, "nightly")
    token_for(alice, "unused")

    assert api.get(key, "/v1/models").status_code == 200

    page = alice_client.get(reverse("api_tokens")).content.decode()
    nightly, unused = (re.search(rf"{name}</th>.*?</tr>", page, re.S)[0] for name in ("nightly", "unused"))  # fmt: skip
    assert "ago" in nightly
    assert "never" in unused


def test_a_revoked_token_gets_401_at_once(alice_client, api, alice, token_for):
    key = token_for(alice, "leaked")
    assert api.get(key, "/v1/models").status_code == 200
    token = ApiToken.objects.get(user=alice)

    response = alice_client.post(reverse("api_token_revoke", args=[token.pk]), follow=True)

    assert "Revoked “leaked”" in response.content.decode()
    refused = api.get(key, "/v1/models")
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "unauthorized"
    assert "Revoked" in alice_client.get(reverse("api_tokens")).content.decode()


def test_bob_cannot_revoke_alices_token(client, alice, bob, api, token_for):
    key = token_for(alice, "alice's")
    token = ApiToken.objects.get(user=alice)
    client.force_login(bob)

    response = client.post(reverse("api_token_revoke", args=[token.pk]))

    assert response.status_code == 404
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None
    assert api.get(key, "/v1/models").status_code == 200


def test_bob_does_not_see_alices_tokens(client, alice, bob, token_for):
    token_for(alice, "alice's secret script")
    client.force_login(bob)

    assert "alice's secret script" not in client.get(reverse("api_tokens")).content.decode()


def test_the_token_page_needs_a_log_in(client):
    response = client.get(reverse("api_tokens"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_staff_can_revoke_a_token_in_the_admin_but_never_see_its_key(
    client, admin_user, alice, api, token_for
):
    key = token_for(alice, "runaway script")
    token = ApiToken.objects.get(user=alice)
    client.force_login(admin_user)

    listing = client.get(reverse("admin:jobs_apitoken_changelist")).content.decode()
    response = client.post(
        reverse("admin:jobs_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [str(token.pk)]},
        follow=True,
    )

    assert "runaway script" in listing and token.key_hash not in listing
    assert "Revoked 1 token." in response.content.decode()
    assert api.get(key, "/v1/models").status_code == 401
