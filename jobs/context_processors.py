from django.conf import settings

from .models import Notice


def studio(request):
    """The "simulator" badge for everyone, and open admin notices for staff."""
    context = {"simulator_mode": settings.SIMULATOR_MODE}
    user = getattr(request, "user", None)
    if user is not None and user.is_staff:
        context["open_notices"] = Notice.objects.filter(resolved_at__isnull=True).count()
    return context
