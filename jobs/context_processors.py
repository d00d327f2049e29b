from django.conf import settings
from django.utils.functional import SimpleLazyObject

from . import selectors
from .models import Notice


def studio(request):
    """The "simulator" badge, the user's budget (for the 80% warning) and open admin notices.

    The budget and notices are lazy: only a full page that shows them queries for them, never
    the polling fragment.
    """
    context = {"simulator_mode": settings.SIMULATOR_MODE}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        context["budget_status"] = SimpleLazyObject(
            lambda: selectors.budget_status_for_user(user=user)
        )
        if user.is_staff:
            context["open_notices"] = SimpleLazyObject(
                lambda: Notice.objects.filter(resolved_at__isnull=True).count()
            )
    return context
