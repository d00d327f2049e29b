"""The studio's URLs, plus two bare views for bench/polling.py's ceiling.

They live here, not in the product: bench/polling_settings.py points ROOT_URLCONF at this module,
so the bench serves the real studio and these on the same gunicorn, through the same middleware.
They come first, so resolving them costs the least: the ceiling is as high as it can be.
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET

from videostudio.urls import urlpatterns as studio_urlpatterns


@require_GET
def bare(request):
    """The ceiling: the whole middleware stack and a tiny response, no session, no query."""
    return HttpResponse(b"ok", content_type="text/plain")


@require_GET
@login_required
def bare_signed_in(request):
    """The bare view behind the log-in check: what loading the session and the user costs."""
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [
    path("bench/bare/", bare),
    path("bench/signed-in/", bare_signed_in),
    *studio_urlpatterns,
]
