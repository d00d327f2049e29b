from django.contrib import admin
from django.urls import include, path

from jobs.views import accounts, review, sharing, spending, tokens
from videostudio.health import healthz

# The admin cost review lives under /admin/ beside the Django admin, so it comes before
# admin.site.urls (whose catch-all would otherwise answer 404 for these paths).
cost_review_urls = (
    [
        path("", review.cost_review, name="review"),
        path("entries/", review.cost_entries, name="entries"),
        path("export.csv", review.cost_export, name="export"),
        path("reconciliation/", review.cost_reconciliation, name="reconciliation"),
        path("reconciliation/<uuid:job_id>/", review.cost_reconcile, name="reconcile"),
    ],
    "costs",
)

urlpatterns = [
    path("", accounts.home, name="home"),
    # Answered by videostudio.health.HealthCheckMiddleware before host validation; routed here
    # too, so it has a name and still answers if that middleware is taken out.
    path("healthz", healthz, name="healthz"),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("jobs/", include("jobs.urls")),
    path("spending/", spending.spending, name="spending"),
    path("api-tokens/", tokens.api_tokens, name="api_tokens"),
    path("api-tokens/<uuid:token_id>/revoke/", tokens.api_token_revoke, name="api_token_revoke"),
    # The ImageRouter-compatible API for scripts, with personal API tokens (jobs/api/).
    path("v1/", include("jobs.api.urls")),
    # Share links: public, the token is the key (jobs/views/sharing.py).
    path("s/<str:token>/", sharing.shared, name="shared"),
    path("s/<str:token>/video/", sharing.shared_video, name="shared_video"),
    path("s/<str:token>/poster/", sharing.shared_poster, name="shared_poster"),
    path("admin/costs/", include(cost_review_urls)),
    path("admin/", admin.site.urls),
]
