from django.contrib import admin
from django.urls import include, path

from jobs import views as job_views

urlpatterns = [
    path("", job_views.home, name="home"),
    path("accounts/signup/", job_views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("jobs/", include("jobs.urls")),
    path("admin/", admin.site.urls),
]
