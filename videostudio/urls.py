from django.contrib import admin
from django.urls import include, path

from jobs.views import accounts

urlpatterns = [
    path("", accounts.home, name="home"),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("jobs/", include("jobs.urls")),
    path("admin/", admin.site.urls),
]
