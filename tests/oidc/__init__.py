"""A real OpenID Connect provider for the single sign-on tests: provider.mjs (the npm package
`oidc-provider`, installed by `npm ci --prefix tests/oidc`), driven from Python here."""

import selectors
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

HERE = Path(__file__).resolve().parent
CLIENT_ID = "videostudio"
CLIENT_SECRET = "videostudio-test-secret"


class IdentityProvider:
    """provider.mjs on a free loopback port, with one client whose redirect URI is the live
    server's callback. Accounts (their claims) are set per test through its control endpoint."""

    def __init__(self, redirect_uri: str):
        if not (HERE / "node_modules" / "oidc-provider").is_dir():
            pytest.fail(
                "The test identity provider is not installed: run `npm ci --prefix tests/oidc`."
            )
        self.process = subprocess.Popen(
            [
                "node", str(HERE / "provider.mjs"),
                "--port", "0",
                "--redirect-uri", redirect_uri,
                "--client-id", CLIENT_ID,
                "--client-secret", CLIENT_SECRET,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        # A selector, not select.select: in a long run the test process may hold more than
        # 1,024 descriptors, which select() cannot watch.
        with selectors.DefaultSelector() as waiting:
            waiting.register(self.process.stdout, selectors.EVENT_READ)
            ready = waiting.select(timeout=20)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("listening "):
            self.process.kill()
            pytest.fail(f"The test identity provider did not start (it said {line!r}).")
        self.issuer = line.split()[1]

    def account(self, login: str, **claims) -> None:
        """The person who signs in at the provider as `login`, with these claims (email,
        email_verified, name, groups, ...); their `sub` is `login`."""
        response = requests.put(
            f"{self.issuer}/__test__/accounts/{quote(login)}", json=claims, timeout=5
        )
        response.raise_for_status()

    def rogue_keys(self, on: bool) -> None:
        """Publish a key set that did not sign the ID tokens (same kid, another key)."""
        requests.put(
            f"{self.issuer}/__test__/rogue-keys", json={"on": on}, timeout=5
        ).raise_for_status()

    def replay_id_token(self, on: bool) -> None:
        """Answer token requests with the ID token issued before: another sign-in's nonce."""
        requests.put(
            f"{self.issuer}/__test__/replay-id-token", json={"on": on}, timeout=5
        ).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def closed_port_url() -> str:
    """An address on loopback where nothing listens: a provider that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    time.sleep(0.01)
    return f"http://127.0.0.1:{port}"
