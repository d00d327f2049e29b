"""Pages of a team, under /teams/<team id>/ (app_name "teams")."""

from django.urls import path

from .views import gallery, teams

app_name = "teams"

urlpatterns = [
    # Team videos: the team's gallery and its bulk actions (jobs/views/gallery.py).
    path("<uuid:team_id>/", gallery.team_job_list, name="videos"),
    path(
        "<uuid:team_id>/selected/delete/", gallery.team_job_delete_selected, name="delete_selected"
    ),
    path(
        "<uuid:team_id>/selected/download/",
        gallery.team_job_download_selected,
        name="download_selected",
    ),
    # For the team's managers and staff (404 for anyone else, members included).
    path("<uuid:team_id>/review/", teams.team_review, name="review"),
    path("<uuid:team_id>/review/entries/", teams.team_entries, name="entries"),
    path("<uuid:team_id>/review/export.csv", teams.team_export, name="export"),
    path("<uuid:team_id>/budgets/", teams.team_budgets, name="budgets"),
]
