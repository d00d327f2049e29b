from django.urls import path

from .views import batches, compose, gallery, groups, sharing
from .views import jobs as views

app_name = "jobs"

urlpatterns = [
    path("", gallery.job_list, name="list"),
    path("selected/delete/", gallery.job_delete_selected, name="delete_selected"),
    path("selected/download/", gallery.job_download_selected, name="download_selected"),
    path("new/", compose.job_create, name="create"),
    path("new/options/", compose.job_create_options, name="create_options"),
    path("compare/", groups.group_compare, name="compare"),
    path("variations/", groups.group_variations, name="variations"),
    path("groups/facts/", groups.group_facts, name="group_facts"),
    path("groups/<uuid:group_id>/", groups.group_detail, name="group"),
    path("groups/<uuid:group_id>/keep/", groups.group_keep, name="group_keep"),
    path("groups/<uuid:group_id>/download/", groups.group_download, name="group_download"),
    path("groups/<uuid:group_id>/share/", groups.group_share, name="group_share"),
    path("groups/<uuid:group_id>/unshare/", groups.group_unshare, name="group_unshare"),
    path("<uuid:job_id>/group-card/", groups.group_card, name="group_card"),
    path("batches/new/", batches.batch_create, name="batch_create"),
    path("batches/start/", batches.batch_start, name="batch_start"),
    path("batches/<uuid:batch_id>/", batches.batch_detail, name="batch_detail"),
    path("batches/<uuid:batch_id>/retry/", batches.batch_retry, name="batch_retry"),
    path("batches/<uuid:batch_id>/download/", batches.batch_download, name="batch_download"),
    path("<uuid:job_id>/", views.job_detail, name="detail"),
    path("<uuid:job_id>/status/", views.job_status, name="status"),
    path("<uuid:job_id>/video/", views.job_video, name="video"),
    path("<uuid:job_id>/image/", views.job_image, name="image"),
    path("<uuid:job_id>/last-frame/", compose.job_last_frame, name="last_frame"),
    path("<uuid:job_id>/poster/", views.job_poster, name="poster"),
    path("<uuid:job_id>/card/", gallery.job_card, name="card"),
    path("<uuid:job_id>/cancel/", views.job_cancel, name="cancel"),
    path("<uuid:job_id>/retry/", views.job_retry, name="retry"),
    path("<uuid:job_id>/delete/", views.job_delete, name="delete"),
    path("<uuid:job_id>/star/", views.job_star, name="star"),
    path("<uuid:job_id>/share/", sharing.job_share, name="share"),
    path("<uuid:job_id>/unshare/", sharing.job_unshare, name="unshare"),
]
