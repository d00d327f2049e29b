"""The security headers on every response, whichever layer made it.

csp's CSPMiddleware, Django's XFrameOptionsMiddleware and SecurityMiddleware add them as a
response passes back through them. Some responses never do: the 413 from
RequestBodyLimitMiddleware and the poll's 204 answer before csp and clickjacking run, and a 500
raised inside a middleware, or the 400 for a Host not allowed, is made by Django's handler
around the middleware that raised. This middleware is first in settings.MIDDLEWARE, so every
response passes it last, and it adds what is missing, with the values the others would have set.
It never replaces a header a view or another middleware chose (a share link's no-referrer, a
view marked csp_exempt or xframe_options_exempt keeps its exemption).
"""

import functools

from csp.constants import HEADER as CSP_HEADER
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# django-csp leaves Django's debug pages (404 and 500 with DEBUG on) without a policy, since
# they carry inline script; so does this.
DEBUG_PAGE_STATUSES = (404, 500)


@functools.cache
def content_security_policy() -> str:
    """The policy CSPMiddleware builds from settings.CONTENT_SECURITY_POLICY, built once."""
    return build_policy()


@receiver(setting_changed)
def _forget_policy(*, setting, **kwargs):
    if setting == "CONTENT_SECURITY_POLICY":
        content_security_policy.cache_clear()


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "X-Frame-Options" not in response and not getattr(
            response, "xframe_options_exempt", False
        ):
            response["X-Frame-Options"] = settings.X_FRAME_OPTIONS
        if settings.SECURE_CONTENT_TYPE_NOSNIFF:
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if referrer_policy := settings.SECURE_REFERRER_POLICY:
            if not isinstance(referrer_policy, str):  # Django also takes a list of them
                referrer_policy = ",".join(referrer_policy)
            response.headers.setdefault("Referrer-Policy", referrer_policy)
        if (
            CSP_HEADER not in response
            and not getattr(response, "_csp_exempt", False)
            and not (settings.DEBUG and response.status_code in DEBUG_PAGE_STATUSES)
        ) and (policy := content_security_policy()):
            response[CSP_HEADER] = policy
        return response
