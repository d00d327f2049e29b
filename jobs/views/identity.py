"""Single sign-on through the organization's identity provider (OpenID Connect), with
mozilla-django-oidc's views: the button's start (state, nonce and a PKCE challenge, kept in the
session) and the provider's callback. Whatever goes wrong ends on a page that says what happened
and offers a way back, never a 500."""

import logging

from django.conf import settings
from django.contrib.auth import logout
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.generic import View
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from jobs import identity, services

logger = logging.getLogger(__name__)

# Sessions made by single sign-on are kept by ModelBackend, as a password log-in's are: it only
# loads the user by id and checks they are active, and the status poll's fast path
# (jobs/polling.py) recognizes exactly that backend.
SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _provider():
    return services.identity._provider_name()


def sign_in_failed(request, *, heading: str, message: str, status: int):
    """The page for a sign-in that did not happen: what happened, and the ways back."""
    return render(
        request,
        "registration/sign_in_failed.html",
        {
            "heading": heading,
            # Sentences may start with "your identity provider".
            "message": message[:1].upper() + message[1:],
            "button_label": settings.OIDC_BUTTON_LABEL,
        },
        status=status,
    )


def _provider_down(request):
    return sign_in_failed(
        request,
        heading="The sign-in service is not answering",
        message=f"The studio could not reach {_provider()}, so you are not signed in. Nothing "
        f"was changed. Try again in a few minutes; if it keeps happening, tell your administrator.",
        status=503,
    )


class _AuthorizationRequest(OIDCAuthenticationRequestView):
    authorization_endpoint = ""

    def __init__(self, **kwargs):
        # The library reads fixed endpoints from settings; ours come from discovery.
        View.__init__(self, **kwargs)
        self.OIDC_OP_AUTH_ENDPOINT = self.authorization_endpoint
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID


@require_GET
def oidc_start(request):
    """The button: discover the provider, then send the browser to it with a fresh state, nonce
    and PKCE challenge (S256), which the session keeps for the callback."""
    if not settings.OIDC_ISSUER:
        raise Http404("Single sign-on is not set up.")
    try:
        config = identity.provider_config()
    except identity.IdentityProviderUnavailable:
        return _provider_down(request)
    view = _AuthorizationRequest.as_view(authorization_endpoint=config.authorization_endpoint)
    return view(request)


class _Callback(OIDCAuthenticationCallbackView):
    def get(self, request):
        """1. The provider said no (access_denied and the like): say so.
        2. A state this browser did not start: refuse (a forged or stale callback).
        3. The library checks the rest: code for tokens with the PKCE verifier, the ID token's
           signature, issuer, audience and nonce; then services.identity_sign_in.
        4. Each failure gets its own page."""
        if not settings.OIDC_ISSUER:
            raise Http404("Single sign-on is not set up.")
        error = request.GET.get("error")
        if error:
            super().get(request)  # forgets the state and ends any session, as the library does
            return self._refused(error)
        state = request.GET.get("state", "")
        if not request.GET.get("code") or state not in request.session.get("oidc_states", {}):
            return sign_in_failed(
                request,
                heading="This sign-in could not be matched to you",
                message=f"The answer from {_provider()} does not belong to a sign-in started in "
                f"this browser (it may be old, already used, or from another window). You are "
                f"not signed in. Start again from the button.",
                status=400,
            )
        try:
            return super().get(request)
        except identity.IdentityProviderUnavailable:
            return _provider_down(request)
        except identity.IdentityCodeRefused as exc:
            logger.warning("The identity provider refused the authorization code: %s", exc)
            return sign_in_failed(
                request,
                heading="The sign-in was not completed",
                message=f"{_provider()} would not confirm this sign-in. You are not signed in. "
                f"Start again from the button.",
                status=400,
            )
        except identity.IdentityTokenRejected as exc:
            logger.warning("An ID token was rejected: %s", exc)
            return self._token_rejected(exc.reason)
        except services.SignInRefused as exc:
            return sign_in_failed(
                request, heading="You are not signed in", message=str(exc), status=403
            )

    def _refused(self, error: str):
        if error == "access_denied":
            message = (
                f"{_provider()} did not let you sign in to the studio: the sign-in was cancelled, "
                f"or your account there may not be allowed to use this studio. Ask your "
                f"administrator if you think you should have access."
            )
        else:
            message = f"{_provider()} could not sign you in (it answered “{error[:60]}”)."
        return sign_in_failed(
            self.request, heading="The sign-in was refused", message=message, status=403
        )

    def _token_rejected(self, reason: str):
        if reason == "nonce":
            message = (
                f"The sign-in that came back from {_provider()} is not the one this browser "
                f"started, so the studio refused it. You are not signed in. Start again from "
                f"the button."
            )
        else:
            message = (
                f"The studio could not verify the answer from {_provider()} (its {reason} did "
                f"not check out), so you are not signed in. Try again; if it keeps happening, "
                f"tell your administrator."
            )
        return sign_in_failed(
            self.request,
            heading="This sign-in could not be verified",
            message=message,
            status=400,
        )

    def login_failure(self):
        if self.request.user.is_authenticated:
            logout(self.request)
        return sign_in_failed(
            self.request,
            heading="You are not signed in",
            message=f"The sign-in through {_provider()} did not complete. Start again from the "
            f"button.",
            status=400,
        )

    def login_success(self):
        self.user.backend = SESSION_BACKEND
        return super().login_success()


oidc_callback = require_GET(_Callback.as_view())
