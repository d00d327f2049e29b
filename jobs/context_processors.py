from django.conf import settings
from django.utils.functional import SimpleLazyObject

from . import selectors
from .models import Notice
from .wording import budget_warning_words


def studio(request):
    """The "simulator" badge, the user's budgets (for the 80% warnings: their personal one,
    and for each of their teams the team's and their own in it) and open admin notices.

    The budgets and notices are lazy: only a full page that shows them queries for them, never
    the polling fragment.
    """
    context = {
        "simulator_mode": settings.SIMULATOR_MODE,
        # With PASSWORD_LOGIN=false accounts come from single sign-on: no "Sign up" link.
        "password_signup": settings.PASSWORD_LOGIN,
    }
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        context["budget_warnings"] = SimpleLazyObject(
            lambda: [
                budget_warning_words(status)
                for status in selectors.budget_statuses_for_user(user=user)
                if status.is_near_limit
            ]
        )
        if user.is_staff:
            context["open_notices"] = SimpleLazyObject(
                lambda: Notice.objects.filter(resolved_at__isnull=True).count()
            )
    return context
