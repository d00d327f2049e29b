"""Production settings added for deployment: what a deployer's URLs keep, and what reports hide."""

from django.views.debug import SafeExceptionReporterFilter, get_default_exception_reporter_filter

from tests.helpers import database_settings


def test_a_managed_databases_sslmode_survives_the_connection_pool():
    database = database_settings(
        DATABASE_URL="postgres://studio:pw@db.example.com:5432/studio?sslmode=require"
    )
    assert database["OPTIONS"]["sslmode"] == "require"
    assert database["OPTIONS"]["pool"]["max_size"] == 10


def test_error_reports_hide_the_password_inside_redis_and_database_urls(settings):
    """Django hides settings named like KEY or PASSWORD; in production REDIS_URL, the broker, the
    cache's LOCATION and DATABASE_URL each carry a password inside a URL."""
    settings.REDIS_URL = "redis://:hunter2-redis@redis.internal:6379/0"
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    settings.DATABASE_URL = "postgres://studio:hunter2-db@db.internal:5432/studio"
    settings.CACHES = {"default": {"BACKEND": "x.RedisCache", "LOCATION": settings.REDIS_URL}}

    report = repr(get_default_exception_reporter_filter().get_safe_settings())

    assert "hunter2" not in report
    hidden = SafeExceptionReporterFilter.cleansed_substitute
    assert f"redis://:{hidden}@redis.internal:6379/0" in report
    assert f"postgres://studio:{hidden}@db.internal:5432/studio" in report
