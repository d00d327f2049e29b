"""The only module that speaks to the identity provider (OpenID Connect), as jobs/imagerouter.py
is for the generation API: discovery, and the relying party's half of the authorization code
flow through mozilla-django-oidc (token, the provider's keys, the ID token's checks).

Unlike the other outbound parties this one is called inside a request: a sign-in cannot wait
for a queue, and a person is waiting on the answer. Every call has OIDC_TIMEOUT, and each
failure becomes a typed error the callback view turns into a page.
"""

import logging
import threading
import time
from dataclasses import dataclass

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

logger = logging.getLogger(__name__)

# How long a discovered configuration is trusted before it is fetched again.
DISCOVERY_TTL_SECONDS = 3600


class IdentityProviderUnavailable(Exception):
    """The provider could not be reached or did not answer as a provider does. Nothing was
    changed; trying again later may work."""


class IdentityTokenRejected(Exception):
    """The provider's answer failed a check, so the studio does not trust it. `reason` is one of
    "nonce", "signature", "issuer", "audience", "expired", "token"."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class IdentityCodeRefused(Exception):
    """The provider's token endpoint refused the authorization code (for example, a wrong PKCE
    verifier, or a code already used)."""


@dataclass(frozen=True)
class ProviderConfig:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


_discovered: dict[str, tuple[float, ProviderConfig]] = {}
_discovered_lock = threading.Lock()


def provider_config() -> ProviderConfig:
    """The provider's endpoints from `<issuer>/.well-known/openid-configuration`, fetched at most
    once an hour per process. A failure is never remembered: the next sign-in asks again."""
    issuer = settings.OIDC_ISSUER
    with _discovered_lock:
        cached = _discovered.get(issuer)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        logger.warning("OpenID Connect discovery failed at %s: %s", url, exc)
        raise IdentityProviderUnavailable(str(exc)) from exc
    try:
        config = ProviderConfig(
            issuer=document["issuer"],
            authorization_endpoint=document["authorization_endpoint"],
            token_endpoint=document["token_endpoint"],
            jwks_uri=document["jwks_uri"],
        )
    except (KeyError, TypeError) as exc:
        logger.warning("OpenID Connect discovery at %s lacks %s", url, exc)
        raise IdentityProviderUnavailable(f"discovery document lacks {exc}") from exc
    # OpenID Connect Discovery 1.0, section 4.3: the issuer must be exactly the one asked for.
    if config.issuer.rstrip("/") != issuer:
        logger.warning("OpenID Connect discovery at %s names issuer %s", url, config.issuer)
        raise IdentityProviderUnavailable(f"the provider says its issuer is {config.issuer}")
    with _discovered_lock:
        _discovered[issuer] = (time.monotonic() + DISCOVERY_TTL_SECONDS, config)
    return config


class IdentityProviderBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend with the endpoints from discovery, the ID token checked in
    full (signature, issuer, audience, expiry, nonce), and the person found or made by
    services.identity_sign_in from the ID token's claims."""

    def __init__(self, *args, **kwargs):
        # Django makes a backend for each request's session check (get_user): no discovery here.
        self.UserModel = get_user_model()

    def authenticate(self, request, nonce=None, code_verifier=None, **kwargs):
        """1. Only the callback's call (with a nonce), and only with single sign-on set up.
        2. Discover the endpoints; mozilla-django-oidc trades the code (with the PKCE verifier)
           for tokens, then calls verify_token and get_or_create_user below."""
        if request is None or nonce is None or not settings.OIDC_ISSUER:
            return None
        config = provider_config()
        self.OIDC_OP_TOKEN_ENDPOINT = config.token_endpoint
        self.OIDC_OP_JWKS_ENDPOINT = config.jwks_uri
        self.OIDC_OP_USER_ENDPOINT = None
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.issuer = config.issuer
        try:
            return super().authenticate(request, nonce=nonce, code_verifier=code_verifier)
        except requests.HTTPError as exc:
            if exc.response is not None and 400 <= exc.response.status_code < 500:
                raise IdentityCodeRefused(exc.response.text[:300]) from exc
            raise IdentityProviderUnavailable(str(exc)) from exc
        except (requests.RequestException, ValueError) as exc:
            raise IdentityProviderUnavailable(str(exc)) from exc

    def verify_token(self, token, **kwargs):
        """The ID token's signature against the provider's published keys, then its issuer,
        audience (this client), expiry and nonce. The library leaves out the audience."""
        if not token:
            raise IdentityTokenRejected("token", "the provider sent no ID token")
        try:
            key = self.retrieve_matching_jwk(token)
        except SuspiciousOperation as exc:
            raise IdentityTokenRejected("signature", str(exc)) from exc
        except jwt.PyJWTError as exc:
            raise IdentityTokenRejected("token", str(exc)) from exc
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=self.issuer,
                leeway=60,
                options={"require": ["iss", "aud", "sub", "exp", "iat"]},
            )
        except jwt.InvalidSignatureError as exc:
            raise IdentityTokenRejected("signature", str(exc)) from exc
        except jwt.ExpiredSignatureError as exc:
            raise IdentityTokenRejected("expired", str(exc)) from exc
        except jwt.InvalidAudienceError as exc:
            raise IdentityTokenRejected("audience", str(exc)) from exc
        except jwt.InvalidIssuerError as exc:
            raise IdentityTokenRejected("issuer", str(exc)) from exc
        except jwt.PyJWTError as exc:
            raise IdentityTokenRejected("token", str(exc)) from exc
        if payload.get("nonce") != kwargs.get("nonce"):
            raise IdentityTokenRejected("nonce", "the ID token's nonce is not this sign-in's")
        return payload

    def get_or_create_user(self, access_token, id_token, payload):
        """The person comes from the ID token's claims alone (it is signed and checked above);
        services.identity_sign_in finds, links or makes the account and syncs the groups."""
        from jobs import services
        from jobs.security import client_ip

        return services.identity_sign_in(
            issuer=self.issuer, claims=payload, address=client_ip(self.request)
        )
