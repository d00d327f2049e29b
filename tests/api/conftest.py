"""Fixtures for the API: personal tokens, and a client that sends them as the provider's key."""

import pytest

from jobs.services import tokens


@pytest.fixture
def token_for():
    """token_for(user) -> the key of a new personal API token for `user`."""

    def make(user, name="script"):
        _, key = tokens.token_create(user=user, name=name)
        return key

    return make


@pytest.fixture
def alice_key(alice, token_for):
    return token_for(alice, "alice's script")


@pytest.fixture
def bob_key(bob, token_for):
    return token_for(bob, "bob's script")


@pytest.fixture
def api(client):
    """The Django test client speaking to /v1/ with a key: api.post(key, path, json=...)."""

    class Api:
        def get(self, key, path, **extra):
            return client.get(path, **_auth(key), **extra)

        def post(self, key, path, *, json=None, data=None, **extra):
            if json is not None:
                return client.post(
                    path, json, content_type="application/json", **_auth(key), **extra
                )
            return client.post(path, data or {}, **_auth(key), **extra)

    return Api()


def _auth(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
