"""The studio's own settings, with bench/urls.py as the URLconf (for the bare views) and the
session engine chosen by bench/polling.py, which compares them. Nothing else differs."""

import os

from videostudio.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
# Unset: whatever videostudio/settings.py says (Django's default, the database, if it says none).
SESSION_ENGINE = os.environ.get("BENCH_SESSION_ENGINE") or globals().get(
    "SESSION_ENGINE", "django.contrib.sessions.backends.db"
)
