"""Comparisons and variations through their pages: the forms and their estimates, the group
page and its cards, "Keep this one", the gallery's single entry, one share link and one zip."""

import io
import zipfile
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from jobs import services
from jobs.models import Job, JobGroup
from tests.factories import KLING, SORA, TEST_MODEL, VEO, set_budget, team_with
from tests.helpers import visible_text

pytestmark = pytest.mark.usefixtures("catalog", "broker_url")

COMPARE = reverse("jobs:compare")
VARIATIONS = reverse("jobs:variations")


def compare_form(models, **fields) -> dict:
    data = {"prompt": "a heron lands on a pier", "models": models, "response_format": "url"}
    return {**data, **fields}


def filed_group(owner, models, *, kind=JobGroup.Kind.COMPARISON, team=None, prompt="a heron"):
    """A group written directly, every job succeeded with a stored video and poster."""
    group = JobGroup.objects.create(kind=kind, owner=owner, team=team)
    for position, model in enumerate(models):
        job = Job.objects.create(
            owner=owner,
            team=team,
            group=group,
            group_position=position,
            prompt=prompt,
            model=model,
            status=Job.Status.SUCCEEDED,
            cost=Decimal("0.30"),
            latency_ms=41_500 + position,
        )
        job.video.save(f"{job.pk}.mp4", ContentFile(f"video {position}".encode()), save=False)
        job.poster.save(f"{job.pk}.jpg", ContentFile(b"jpeg"), save=False)
        job.save(update_fields=["video", "poster"])
    return group


# --- The forms -------------------------------------------------------------------------------------


def test_the_generate_form_leads_to_compare_and_variations(alice_client):
    page = alice_client.get(reverse("jobs:create")).content.decode()
    assert f'href="{COMPARE}"' in page and f'href="{VARIATIONS}"' in page


def test_the_compare_form_lists_each_model_with_its_own_seconds_size_and_estimate(alice_client):
    response = alice_client.get(COMPARE)

    text = visible_text(response)
    assert response.status_code == 200
    assert "google/veo-3.1-fast (simulated)" in text and "$0.60" in text
    assert "about $0.30, at most $0.50" in text  # Kling's estimate
    page = response.content.decode()
    assert 'name="seconds__google-veo-3-1-fast"' in page and 'value="8"' in page
    assert 'name="size__kling-kling-2-1-standard"' in page and 'value="960x960"' in page


def test_the_facts_show_each_estimate_and_the_worst_case_total(alice_client, alice):
    set_budget(alice, "1.00")

    response = alice_client.get(
        reverse("jobs:group_facts"), {"kind": "comparison", "models": [VEO, KLING, TEST_MODEL]}
    )

    text = visible_text(response)
    assert "Worst-case total: $1.10 for 3 videos" in text
    assert "google/veo-3.1-fast (simulated): $0.60" in text
    assert "You have $1.00 left this month" in text
    assert (
        "These 3 videos could cost up to $1.10 together, $0.10 more than your personal budget"
        in text
    )


def test_the_variations_facts_multiply_by_the_runs(alice_client):
    response = alice_client.get(
        reverse("jobs:group_facts"), {"kind": "variations", "model": VEO, "runs": "5"}
    )
    assert "Worst-case total: $3.00 for 5 videos" in visible_text(response)


def test_comparing_makes_one_job_per_model_with_its_own_settings(alice_client, alice):
    response = alice_client.post(
        COMPARE,
        compare_form(
            [VEO, KLING],
            **{"seconds__google-veo-3-1-fast": "8", "size__kling-kling-2-1-standard": "960x960"},
        ),
    )

    group = JobGroup.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "jobs:group", args=[group.pk]
    )
    veo, kling = group.jobs.order_by("group_position")
    assert (veo.model, veo.seconds, veo.size) == (VEO, "8", "auto")
    assert (kling.model, kling.seconds, kling.size) == (KLING, "5", "960x960")
    assert group.kind == "comparison" and {veo.prompt, kling.prompt} == {"a heron lands on a pier"}


def test_pressing_compare_twice_makes_one_group(alice_client):
    data = compare_form([VEO, KLING], submit_token="6b1f0c2e9a4d4a6f8a3e2d1c0b9a8f7e")
    first = alice_client.post(COMPARE, data)
    second = alice_client.post(COMPARE, data)

    assert first["Location"] == second["Location"]
    assert JobGroup.objects.count() == 1 and Job.objects.count() == 2


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([VEO], "Choose 2 to 6 models to compare; you chose 1."),
        ([], "Choose 2 to 6 models to compare; you chose 0."),
    ],
)
def test_too_few_models_is_refused_with_a_message(alice_client, models, message):
    response = alice_client.post(COMPARE, compare_form(models))
    assert response.status_code == 200
    assert message in visible_text(response)
    assert not Job.objects.exists()


def test_a_duration_the_model_does_not_make_is_refused_on_its_row(alice_client):
    response = alice_client.post(
        COMPARE, compare_form([VEO, KLING], **{"seconds__google-veo-3-1-fast": "30"})
    )
    assert "google/veo-3.1-fast makes videos of 4, 6 or 8 seconds" in visible_text(response)
    assert not Job.objects.exists()


def test_an_image_for_a_model_without_image_input_is_refused(alice_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.media import image_bytes

    image = SimpleUploadedFile("in.png", image_bytes(), content_type="image/png")
    response = alice_client.post(COMPARE, {**compare_form([VEO, SORA]), "image": image})
    assert "openai/sora-2 does not take an input image" in visible_text(response)
    assert not Job.objects.exists()


def test_a_comparison_over_budget_comes_back_with_the_level_and_the_shortfall(alice_client, alice):
    set_budget(alice, "1.00")
    response = alice_client.post(COMPARE, compare_form([VEO, SORA]))
    assert response.status_code == 200
    assert (
        "Your personal budget has $1.00 left this month; these 2 videos could cost up to $1.80 "
        "together, $0.80 more than that." in visible_text(response)
    )
    assert not Job.objects.exists()


def test_a_model_the_team_may_not_use_is_refused_for_a_team_comparison(alice_client, alice):
    design = team_with("Design", members=[alice], models=[TEST_MODEL, VEO])
    response = alice_client.post(COMPARE, compare_form([VEO, KLING], charge_to=str(design.pk)))
    assert "is not a model you can choose here" in visible_text(response)
    assert not Job.objects.exists()


def test_variations_make_the_runs_of_one_model_with_the_same_settings(alice_client):
    response = alice_client.post(
        VARIATIONS,
        {
            "prompt": "a kite",
            "model": KLING,
            "runs": "3",
            "seconds__kling-kling-2-1-standard": "10",
            "size__kling-kling-2-1-standard": "720x1280",
            "response_format": "url",
        },
    )
    group = JobGroup.objects.get()
    assert response.status_code == 302 and group.kind == "variations"
    assert (
        list(group.jobs.values_list("model", "seconds", "size")) == [(KLING, "10", "720x1280")] * 3
    )


@pytest.mark.parametrize("runs", ["1", "9", "many"])
def test_variations_take_two_to_eight_runs(alice_client, runs):
    response = alice_client.post(
        VARIATIONS, {"prompt": "a kite", "model": KLING, "runs": runs, "response_format": "url"}
    )
    assert response.status_code == 200 and not Job.objects.exists()
    assert "runs" in visible_text(response).lower()


# --- The group page ------------------------------------------------------------------------------


def test_the_group_page_shows_each_video_with_its_model_cost_latency_and_status(
    alice_client, alice
):
    group = filed_group(alice, [VEO, KLING])

    response = alice_client.get(reverse("jobs:group", args=[group.pk]))

    text = visible_text(response)
    assert "Compare models" in text and "2 of 2 finished" in text and "Cost so far: $0.60" in text
    assert text.count("Keep this one") == 2 and "41.5 s" in text and "Done" in text
    page = response.content.decode()
    for job in group.jobs.all():
        assert reverse("jobs:video", args=[job.pk]) in page
    assert 'src="/static/js/group.js"' in page or "js/group." in page


def test_a_live_card_polls_and_a_finished_one_stops_the_polling(alice_client, alice):
    group = services.job_group_create(
        owner=alice,
        kind=JobGroup.Kind.COMPARISON,
        specs=[services.JobSpec(prompt="p", model=TEST_MODEL)] * 2,
    )
    live, done = group.jobs.order_by("group_position")
    Job.objects.filter(pk=done.pk).update(status=Job.Status.SUCCEEDED, cost=0)

    page = alice_client.get(reverse("jobs:group", args=[group.pk])).content.decode()
    assert f'hx-get="{reverse("jobs:group_card", args=[live.pk])}"' in page
    assert f'hx-get="{reverse("jobs:group_card", args=[done.pk])}"' not in page
    assert alice_client.get(reverse("jobs:group_card", args=[live.pk])).status_code == 200
    assert alice_client.get(reverse("jobs:group_card", args=[done.pk])).status_code == 286
    summary_url = reverse("jobs:group", args=[group.pk])
    summary = alice_client.get(summary_url, {"part": "summary"})
    assert summary.status_code == 200 and "1 of 2 finished" in visible_text(summary)
    Job.objects.filter(pk=live.pk).update(status=Job.Status.SUCCEEDED, cost=0)
    summary = alice_client.get(summary_url, {"part": "summary"})
    assert summary.status_code == 286 and "2 of 2 finished" in visible_text(summary)


def test_bob_gets_404_on_alices_group_its_cards_and_its_zip(alice, bob, client):
    group = filed_group(alice, [VEO, KLING])
    client.force_login(bob)
    job = group.jobs.first()
    assert client.get(reverse("jobs:group", args=[group.pk])).status_code == 404
    assert client.get(reverse("jobs:group_card", args=[job.pk])).status_code == 404
    assert client.get(reverse("jobs:group_download", args=[group.pk])).status_code == 404
    keep = client.post(reverse("jobs:group_keep", args=[group.pk]), {"job": job.pk})
    assert keep.status_code == 404
    assert not Job.objects.filter(starred_at__isnull=False).exists()


def test_a_team_members_see_the_teams_comparison_and_a_removed_one_does_not(alice, bob, client):
    design = team_with("Design", members=[alice, bob])
    group = filed_group(alice, [VEO, KLING], team=design)
    client.force_login(bob)
    url = reverse("jobs:group", args=[group.pk])
    page = client.get(url)
    assert page.status_code == 200 and "Keep this one" not in visible_text(page)
    services.membership_remove(team=design, user=bob, by=None)
    assert client.get(url).status_code == 404


def test_keep_this_one_stars_it_and_offers_to_delete_the_others_in_one_step(alice_client, alice):
    group = filed_group(alice, [VEO, KLING, SORA])
    veo, kling, sora = group.jobs.order_by("group_position")
    keep_url = reverse("jobs:group_keep", args=[group.pk])

    offer = alice_client.post(keep_url, {"job": kling.pk}, follow=True)

    kling.refresh_from_db()
    assert kling.starred_at is not None
    text = visible_text(offer)
    assert "You kept video 2" in text and "Delete the other 2 finished videos" in text
    assert Job.objects.filter(deleted_at__isnull=False).count() == 0

    done = alice_client.post(keep_url, {"job": kling.pk, "delete_others": "1"}, follow=True)

    assert "Kept this one and deleted 2 other videos" in visible_text(done)
    assert set(Job.objects.filter(deleted_at__isnull=False)) == {veo, sora}
    assert Job.objects.get(pk=kling.pk).deleted_at is None
    assert len(done.context["jobs"]) == 1


def test_keep_this_one_leaves_a_video_still_in_progress(alice_client, alice):
    group = filed_group(alice, [VEO, KLING])
    veo, kling = group.jobs.order_by("group_position")
    Job.objects.filter(pk=kling.pk).update(status=Job.Status.RUNNING)

    done = alice_client.post(
        reverse("jobs:group_keep", args=[group.pk]),
        {"job": veo.pk, "delete_others": "1"},
        follow=True,
    )

    assert "1 is still in progress and was not deleted" in visible_text(done)
    assert Job.objects.get(pk=kling.pk).deleted_at is None


# --- Gallery, share link, zip ---------------------------------------------------------------------


def test_a_comparison_is_one_entry_in_the_gallery_that_opens_to_each_video(alice_client, alice):
    group = filed_group(alice, [VEO, KLING, SORA])
    alone = filed_group(alice, [TEST_MODEL, TEST_MODEL]).jobs.first()
    Job.objects.filter(pk=alone.pk).update(group=None, group_position=None)

    response = alice_client.get(reverse("jobs:list"))

    text = visible_text(response)
    assert "3 videos" in text  # the comparison, the job made alone and the other one
    assert text.count("Comparison of 3 videos") == 1
    page = response.content.decode()
    for job in group.jobs.all():
        assert reverse("jobs:detail", args=[job.pk]) in page
    assert reverse("jobs:group", args=[group.pk]) in page


def test_the_gallery_entry_follows_the_filters_to_the_first_matching_video(alice_client, alice):
    group = filed_group(alice, [VEO, KLING])
    response = alice_client.get(reverse("jobs:list"), {"model": KLING})
    assert "1 video" in visible_text(response)
    [entry] = response.context["page"].object_list
    assert entry.model == KLING and entry.group_id == group.pk


def test_selecting_a_group_entry_downloads_all_its_videos(alice_client, alice):
    group = filed_group(alice, [VEO, KLING])
    response = alice_client.post(reverse("jobs:download_selected"), {"group": group.pk})
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert len(archive.namelist()) == 2


def test_the_group_zip_holds_every_video_named_by_place_and_model(alice_client, alice):
    group = filed_group(alice, [VEO, KLING, SORA])

    response = alice_client.get(reverse("jobs:group_download", args=[group.pk]))

    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == [
        "1-google-veo-3-1-fast.mp4",
        "2-kling-kling-2-1-standard.mp4",
        "3-openai-sora-2.mp4",
    ]
    assert archive.read("2-kling-kling-2-1-standard.mp4") == b"video 1"


def test_one_share_link_shows_the_groups_finished_videos_to_anyone_until_revoked(
    alice_client, alice
):
    group = filed_group(alice, [VEO, KLING])
    Job.objects.filter(group=group, model=KLING).update(status=Job.Status.FAILED)

    alice_client.post(reverse("jobs:group_share", args=[group.pk]))
    group.refresh_from_db()
    token = group.share_token
    assert token

    client = Client()  # anyone: not signed in
    public = client.get(reverse("shared_group", args=[token]))
    assert public.status_code == 200
    text = visible_text(public)
    assert "google/veo-3.1-fast" in text and "kling" not in text and "alice" not in text
    assert public["Referrer-Policy"] == "no-referrer"
    veo = group.jobs.get(model=VEO)
    kling = group.jobs.get(model=KLING)
    video = client.get(reverse("shared_group_video", args=[token, veo.pk]))
    assert video.status_code == 200
    assert client.get(reverse("shared_group_video", args=[token, kling.pk])).status_code == 404

    alice_client.post(reverse("jobs:group_unshare", args=[group.pk]))
    assert client.get(reverse("shared_group", args=[token])).status_code == 404
    assert client.get(reverse("shared_group_video", args=[token, veo.pk])).status_code == 404


def test_only_the_owner_can_share_a_teams_comparison(alice, bob, client):
    design = team_with("Design", members=[alice, bob])
    group = filed_group(alice, [VEO, KLING], team=design)
    client.force_login(bob)
    assert client.post(reverse("jobs:group_share", args=[group.pk])).status_code == 404
    group.refresh_from_db()
    assert group.share_token is None


def test_a_job_page_links_to_its_group(alice_client, alice):
    group = filed_group(alice, [VEO, KLING])
    job = group.jobs.first()
    page = alice_client.get(reverse("jobs:detail", args=[job.pk])).content.decode()
    assert reverse("jobs:group", args=[group.pk]) in page


def test_deleting_an_account_ends_its_groups_share_links(alice_client, alice):
    group = filed_group(alice, [VEO, KLING])
    alice_client.post(reverse("jobs:group_share", args=[group.pk]))
    group.refresh_from_db()
    token = group.share_token
    assert token

    services.account_delete(user=alice)

    assert Client().get(reverse("shared_group", args=[token])).status_code == 404


def test_a_failed_video_of_a_comparison_is_retried_into_it_and_stays_one_entry(alice_client, alice):
    group = filed_group(alice, [VEO, KLING])
    kling = group.jobs.get(model=KLING)
    Job.objects.filter(pk=kling.pk).update(status=Job.Status.FAILED, cost=0)

    alice_client.post(reverse("jobs:retry", args=[kling.pk]))

    retry = Job.objects.get(status=Job.Status.QUEUED)
    assert retry.group_id == group.pk and retry.group_position == 1 and retry.model == KLING
    page = alice_client.get(reverse("jobs:group", args=[group.pk]))
    assert [job.status for job in page.context["jobs"]] == ["succeeded", "failed", "queued"]
    gallery = alice_client.get(reverse("jobs:list"))
    assert len(gallery.context["page"].object_list) == 1
    assert len(gallery.context["page"].object_list[0].group_jobs) == 3
