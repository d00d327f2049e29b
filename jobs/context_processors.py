from django.conf import settings


def studio(request):
    """Lets every page show the "simulator" badge when no real API key is configured."""
    return {"simulator_mode": settings.SIMULATOR_MODE}
