"""/v1/: the ImageRouter-compatible API (views.py). Included from videostudio/urls.py."""

from django.urls import path, re_path

from . import views

app_name = "api"

urlpatterns = [
    path("openai/videos/generations", views.generations, name="generations"),
    # str, not uuid: a malformed id gets the API's JSON 404, not the site's HTML one.
    path("jobs/<str:job_id>", views.job_detail, name="job"),
    path("jobs/<str:job_id>/content", views.job_content, name="job_content"),
    path("models", views.models, name="models"),
    path("openapi.json", views.openapi_document, name="openapi"),
    re_path(r"^(?P<path>.*)$", views.not_found, name="not_found"),
]
