"""Team videos: a team's gallery for its members, what each member may do there, My videos
beside it, and how removing someone from a team (or deactivating them) takes their access away
everywhere at once."""

import io
import zipfile

import pytest
from django.test import Client
from django.urls import reverse

from jobs import services
from jobs.models import Job
from tests.factories import KLING, filed_job, new_job, running, team_with
from tests.helpers import Elements, live_poll, status_fragment, visible_text

pytestmark = pytest.mark.usefixtures("fast_passwords")


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def videos_of(team, **query):
    return reverse("teams:videos", args=[team.pk]), query


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol", password="carol-password-1")


@pytest.fixture
def erin(django_user_model):
    return django_user_model.objects.create_user("erin", password="erin-password-1")


@pytest.fixture
def design(alice, bob, carol):
    """alice and bob are members, carol manages it."""
    return team_with("Design", members=[alice, bob], managers=[carol])


@pytest.fixture
def alices_team_video(alice, design):
    return filed_job(alice, "a heron over the design studio", team=design)


def gallery_text(client, team, **query) -> str:
    response = client.get(*videos_of(team, **query))
    assert response.status_code == 200
    return visible_text(response)


def remove(user, team):
    services.membership_remove(team=team, user=user, by=None)


def deactivate(user, team):
    user.is_active = False
    user.save()


# The gallery ------------------------------------------------------------------------------------


def test_a_teammate_sees_a_colleagues_video_and_who_made_it(bob, design, alices_team_video, erin):
    new_job(bob, "bob private sketch")  # personal: bob's alone
    other = team_with("Marketing", members=[erin])
    filed_job(erin, "a marketing teaser", team=other)

    text = gallery_text(signed_in(bob), design)

    assert "Design team videos" in text
    assert "a heron over the design studio" in text
    assert "Made by alice" in text and "Team Design team" in text
    assert "bob private sketch" not in text and "a marketing teaser" not in text


def test_team_videos_search_and_filter_as_my_videos_do(alice, bob, design):
    filed_job(alice, "a heron lands on a pier", team=design)
    filed_job(bob, "a fox in the snow", team=design, model=KLING)
    new_job(bob, "a fox that failed", team=design, status=Job.Status.FAILED)
    client = signed_in(bob)

    assert "a heron" not in gallery_text(client, design, q="fox")
    text = gallery_text(client, design, q="fox", status="succeeded")
    assert "a fox in the snow" in text and "a fox that failed" not in text
    text = gallery_text(client, design, model=KLING)
    assert "a fox in the snow" in text and "a heron" not in text
    # htmx asks for the results alone, as on My videos.
    fragment = client.get(*videos_of(design, q="heron"), headers={"HX-Request": "true"})
    assert fragment.content.decode().lstrip().startswith('<section id="gallery"')
    assert "a heron lands on a pier" in visible_text(fragment)


def test_team_videos_are_not_found_outside_the_team(erin, carol, alice, design, admin_client):
    other = team_with("Marketing", managers=[erin])  # a manager, of another team
    path, _ = videos_of(design)

    assert signed_in(erin).get(path).status_code == 404
    assert signed_in(alice).get(reverse("teams:videos", args=[other.pk])).status_code == 404
    anonymous = Client().get(path)
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    staff = admin_client.get(path)
    assert staff.status_code == 200 and "You see them as staff" in visible_text(staff)


def test_my_videos_shows_my_team_videos_marked_with_their_team_while_i_am_in_it(alice, bob, design):
    new_job(alice, "alice own sketch")
    filed_job(alice, "alice design video", team=design)
    filed_job(bob, "bob design video", team=design)
    client = signed_in(alice)

    text = visible_text(client.get(reverse("jobs:list")))
    assert "alice own sketch" in text and "alice design video" in text
    assert "Team Design team" in text
    assert "bob design video" not in text

    remove(alice, design)

    text = visible_text(client.get(reverse("jobs:list")))
    assert "alice own sketch" in text and "alice design video" not in text
    # What she made stays with the team.
    assert "alice design video" in gallery_text(signed_in(bob), design)


def test_the_teams_menu_links_each_of_my_teams(alice, erin, design):
    other = team_with("Marketing", members=[alice])
    html = signed_in(alice).get(reverse("jobs:list")).content.decode()

    links = {a.get("href") for a in Elements(html).all("a")}
    assert {videos_of(design)[0], videos_of(other)[0]} <= links
    assert "Design team videos" in html and "Marketing team videos" in html
    assert (
        "<summary>Teams</summary>" not in signed_in(erin).get(reverse("jobs:list")).content.decode()
    )


# Zip and delete -----------------------------------------------------------------------------


def test_a_member_downloads_teammates_videos_but_nothing_of_another_space(
    alice, bob, erin, design, alices_team_video
):
    bobs = filed_job(bob, "bob design video", team=design)
    alices_own = filed_job(alice, "alice personal video")
    foreign = filed_job(erin, "erin video", team=team_with("Marketing", members=[erin]))
    path = reverse("teams:download_selected", args=[design.pk])

    response = signed_in(bob).post(
        path, {"job": [alices_team_video.pk, bobs.pk, alices_own.pk, foreign.pk]}
    )

    assert response.status_code == 200
    assert "videostudio-design-" in response["Content-Disposition"]
    names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    assert sorted(name.split("-")[-1][:8] for name in names) == sorted(
        [alices_team_video.pk.hex[:8], bobs.pk.hex[:8]]
    )


def test_a_member_deletes_their_own_team_videos_not_a_teammates(bob, design, alices_team_video):
    bobs = filed_job(bob, "bob design video", team=design)
    path = reverse("teams:delete_selected", args=[design.pk])

    response = signed_in(bob).post(
        path, {"job": [alices_team_video.pk, bobs.pk], "confirmed": "1"}, follow=True
    )

    text = visible_text(response)
    assert "Deleted 1 video" in text and "1 was made by a teammate" in text
    assert Job.objects.get(pk=bobs.pk).deleted_at is not None
    assert Job.objects.get(pk=alices_team_video.pk).deleted_at is None


def test_a_manager_deletes_any_of_the_teams_videos_in_bulk(carol, design, alices_team_video):
    path = reverse("teams:delete_selected", args=[design.pk])

    response = signed_in(carol).post(path, {"job": [alices_team_video.pk], "confirmed": "1"})

    assert response.status_code == 302 and response["Location"] == videos_of(design)[0]
    assert Job.objects.get(pk=alices_team_video.pk).deleted_at is not None


def test_a_teammate_has_no_delete_on_a_colleagues_video_and_its_post_is_404(
    bob, design, alices_team_video
):
    client = signed_in(bob)
    page = client.get(reverse("jobs:detail", args=[alices_team_video.pk]))
    delete = reverse("jobs:delete", args=[alices_team_video.pk])

    text = visible_text(page)
    assert "A video by alice" in text and "Delete…" not in text
    assert "Generate again" not in text and "Create a share link" not in text
    assert client.get(delete).status_code == 404
    assert client.post(delete).status_code == 404
    assert Job.objects.get(pk=alices_team_video.pk).deleted_at is None


def test_the_teams_manager_may_delete_a_members_video_from_its_page(
    carol, design, alices_team_video
):
    client = signed_in(carol)
    page = client.get(reverse("jobs:detail", args=[alices_team_video.pk]))
    assert "Delete…" in visible_text(page)

    response = client.post(reverse("jobs:delete", args=[alices_team_video.pk]))

    assert response.status_code == 302 and response["Location"] == videos_of(design)[0]
    assert Job.objects.get(pk=alices_team_video.pk).deleted_at is not None


def test_a_manager_of_another_team_cannot_delete(erin, alices_team_video):
    team_with("Marketing", managers=[erin])
    client = signed_in(erin)

    assert client.post(reverse("jobs:delete", args=[alices_team_video.pk])).status_code == 404
    path = reverse("jobs:delete_selected")
    client.post(path, {"job": [alices_team_video.pk], "confirmed": "1"})
    assert Job.objects.get(pk=alices_team_video.pk).deleted_at is None


# Share links ------------------------------------------------------------------------------------


def test_the_owner_shares_a_team_video_and_the_link_dies_when_they_leave_the_team(
    alice, bob, design, alices_team_video
):
    share = reverse("jobs:share", args=[alices_team_video.pk])
    assert signed_in(bob).post(share).status_code == 404  # a teammate may look, not share
    signed_in(alice).post(share)
    alices_team_video.refresh_from_db()
    link = reverse("shared", args=[alices_team_video.share_token])
    assert Client().get(link).status_code == 200

    remove(alice, design)

    assert Client().get(link).status_code == 404
    assert (
        Client().get(reverse("shared_video", args=[alices_team_video.share_token])).status_code
        == 404
    )


# Removed or deactivated: access goes at once ------------------------------------------------------


def files_and_fragments(job) -> list[str]:
    return [
        reverse("jobs:detail", args=[job.pk]),
        reverse("jobs:video", args=[job.pk]),
        reverse("jobs:poster", args=[job.pk]),
        reverse("jobs:image", args=[job.pk]),
        reverse("jobs:card", args=[job.pk]),
        reverse("jobs:status", args=[job.pk]),
    ]


@pytest.mark.parametrize(("take_away", "refusal"), [(remove, 404), (deactivate, 302)])
def test_losing_the_team_takes_away_its_pages_files_and_fragments_at_once(
    bob, design, alices_team_video, take_away, refusal
):
    client = signed_in(bob)
    paths = [*files_and_fragments(alices_team_video), videos_of(design)[0]]
    for path in paths:
        assert client.get(path).status_code in (200, 286), path

    take_away(bob, design)

    for path in paths:
        assert client.get(path).status_code == refusal, path
    alices_team_video.refresh_from_db()
    assert alices_team_video.team == design and alices_team_video.deleted_at is None


@pytest.mark.parametrize(("take_away", "refusal"), [(remove, 404), (deactivate, 302)])
def test_losing_the_team_ends_the_status_polls_fast_path_too(
    alice, bob, design, take_away, refusal
):
    job = running(alice, for_seconds=1)
    Job.objects.filter(pk=job.pk).update(team=design)
    client = signed_in(bob)
    query = live_poll(client, job)
    assert status_fragment(client, job, **query).status_code == 204  # the fast path's answer

    take_away(bob, design)

    assert status_fragment(client, job, **query).status_code == refusal


@pytest.mark.parametrize(("take_away", "refusal"), [(remove, 404), (deactivate, 401)])
def test_losing_the_team_takes_away_its_jobs_in_the_api(
    api, bob_key, bob, design, alices_team_video, take_away, refusal
):
    job_path = f"/v1/jobs/{alices_team_video.pk}"
    assert api.get(bob_key, job_path).status_code == 200  # a teammate reads it, as on the pages
    assert api.get(bob_key, f"{job_path}/content").status_code == 200

    take_away(bob, design)

    assert api.get(bob_key, job_path).status_code == refusal
    assert api.get(bob_key, f"{job_path}/content").status_code == refusal


def test_a_removed_maker_loses_their_own_team_video_everywhere(alice, design, alices_team_video):
    client = signed_in(alice)

    remove(alice, design)

    for path in files_and_fragments(alices_team_video):
        assert client.get(path).status_code == 404, path
    assert client.post(reverse("jobs:delete", args=[alices_team_video.pk])).status_code == 404
