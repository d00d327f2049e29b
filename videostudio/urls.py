from django.contrib import admin
from django.urls import include, path

from jobs.views import (
    account_data,
    accounts,
    alerts,
    identity,
    reconciliation,
    review,
    sharing,
    spending,
    tokens,
)
from videostudio.health import healthz, healthz_full
from videostudio.metrics import metrics

# The admin cost review lives under /admin/ beside the Django admin, so it comes before
# admin.site.urls (whose catch-all would otherwise answer 404 for these paths).
cost_review_urls = (
    [
        path("", review.cost_review, name="review"),
        path("entries/", review.cost_entries, name="entries"),
        path("export.csv", review.cost_export, name="export"),
        path("organization-budget/", review.organization_budget_set, name="organization_budget"),
        path("reconciliation/", reconciliation.cost_reconciliation, name="reconciliation"),
        path("reconciliation/<uuid:job_id>/", reconciliation.cost_reconcile, name="reconcile"),
    ],
    "costs",
)

urlpatterns = [
    path("", accounts.home, name="home"),
    # Answered by videostudio.health.HealthCheckMiddleware before host validation (all three);
    # routed here too, so they have names and still answer if that middleware is taken out.
    path("healthz", healthz, name="healthz"),
    path("healthz/full", healthz_full, name="healthz_full"),
    path("metrics", metrics, name="metrics"),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/signup/sent/", accounts.signup_sent, name="signup_sent"),
    path("accounts/verify/resend/", accounts.signup_verify_resend, name="signup_verify_resend"),
    path("accounts/verify/<str:token>/", accounts.signup_verify, name="signup_verify"),
    # Django's own views (the rest come from django.contrib.auth.urls below), with the studio's
    # forms: log-in that knows unconfirmed addresses, a reset that goes through the outbox.
    path("accounts/login/", accounts.StudioLoginView.as_view(), name="login"),
    path("accounts/password_reset/", accounts.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        accounts.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    # Single sign-on (OpenID Connect): the button, and the redirect URI to register at the
    # identity provider (https://<studio>/accounts/oidc/callback/).
    path("accounts/oidc/start/", identity.oidc_start, name="oidc_start"),
    path("accounts/oidc/callback/", identity.oidc_callback, name="oidc_callback"),
    path("accounts/", include("django.contrib.auth.urls")),
    # The signed-in person's own account pages.
    path("account/email/", accounts.account_email, name="account_email"),
    path(
        "account/email/confirm/<str:token>/",
        accounts.account_email_confirm,
        name="account_email_confirm",
    ),
    # Their own data: all of it as one .zip, and deleting the account.
    path("account/data/", account_data.account_data, name="account_data"),
    path("account/data/export/", account_data.account_data_export, name="account_data_export"),
    path("account/delete/", account_data.account_delete, name="account_delete"),
    path("jobs/", include("jobs.urls")),
    # A team's pages: its gallery for members; its spend review and budgets for its managers.
    path("teams/", include("jobs.team_urls")),
    path("spending/", spending.spending, name="spending"),
    path(
        "account/notifications/",
        alerts.notification_settings,
        name="notification_settings",
    ),
    path("api-tokens/", tokens.api_tokens, name="api_tokens"),
    path("api-tokens/<uuid:token_id>/revoke/", tokens.api_token_revoke, name="api_token_revoke"),
    path("api-tokens/<uuid:token_id>/budget/", tokens.api_token_budget, name="api_token_budget"),
    path("api-tokens/<uuid:token_id>/webhook/", tokens.api_token_webhook, name="api_token_webhook"),
    path(
        "api-tokens/<uuid:token_id>/secret/",
        tokens.api_token_secret_rotate,
        name="api_token_secret_rotate",
    ),
    path(
        "api-tokens/deliveries/<uuid:delivery_id>/resend/",
        tokens.api_delivery_resend,
        name="api_delivery_resend",
    ),
    # The ImageRouter-compatible API for scripts, with personal API tokens (jobs/api/).
    path("v1/", include("jobs.api.urls")),
    # Share links: public, the token is the key (jobs/views/sharing.py).
    # A shared comparison or variations (before s/<token>/..., which "g/<token>" would match).
    path("s/g/<str:token>/", sharing.shared_group, name="shared_group"),
    path(
        "s/g/<str:token>/<uuid:job_id>/video/",
        sharing.shared_group_video,
        name="shared_group_video",
    ),
    path(
        "s/g/<str:token>/<uuid:job_id>/poster/",
        sharing.shared_group_poster,
        name="shared_group_poster",
    ),
    path("s/<str:token>/", sharing.shared, name="shared"),
    path("s/<str:token>/video/", sharing.shared_video, name="shared_video"),
    path("s/<str:token>/poster/", sharing.shared_poster, name="shared_poster"),
    path("admin/costs/", include(cost_review_urls)),
    path("admin/", admin.site.urls),
]
