"""Retention and storage on local disk: the sweeper deletes the files of videos older than their
retention (RETENTION_DAYS, or their team's) and keeps the job, its prompt and its cost; a star
keeps a video; owners see and are emailed, once, what expires within seven days; sizes are
recorded as files are stored; a team's storage quota refuses new videos. The same on S3:
tests/jobs/test_s3_retention.py."""

import html
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from jobs import services
from jobs.models import AuditEvent, CostEntry, Job, OutgoingEmail, StoredFileDeletion
from jobs.services import tokens
from jobs.templatetags.studio import bytes_size
from tests.factories import form_data, stored_job, team_with
from tests.helpers import visible_text

pytestmark = pytest.mark.usefixtures("catalog", "broker_url", "fast_passwords")


def aged(job: Job, days: float) -> Job:
    """The job as if it had been made `days` ago."""
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=days))
    return Job.objects.select_related("team").get(pk=job.pk)


def paths(job: Job) -> list[Path]:
    return [Path(f.path) for f in (job.video, job.poster, job.input_image) if f]


@pytest.fixture
def retention(settings):
    settings.RETENTION_DAYS = 30
    return settings


# Deleting expired files -----------------------------------------------------------------------


def test_the_sweeper_deletes_an_old_videos_files_and_keeps_the_job_its_prompt_and_its_cost(
    alice, retention
):
    job = aged(stored_job(alice, "a lighthouse at dusk"), 31)
    files = paths(job)
    assert len(files) == 2 and all(path.exists() for path in files)

    counts = services.sweep()

    assert counts["jobs_expired"] == 1
    assert not any(path.exists() for path in files)
    job.refresh_from_db()
    assert job.expired_at is not None and job.status == Job.Status.SUCCEEDED
    assert (job.video.name, job.poster.name, job.stored_bytes) == ("", "", 0)
    assert job.prompt == "a lighthouse at dusk"
    assert CostEntry.objects.get(job=job).outcome == CostEntry.Outcome.CHARGED
    assert not StoredFileDeletion.objects.exists()


def test_younger_videos_starred_videos_and_a_studio_without_retention_keep_their_files(
    alice, retention
):
    young = aged(stored_job(alice), 29)
    starred = aged(stored_job(alice), 400)
    assert services.job_star_set(job=starred, starred=True)

    assert services.sweep()["jobs_expired"] == 0

    assert all(path.exists() for path in paths(young) + paths(starred))
    retention.RETENTION_DAYS = None
    assert services.sweep()["jobs_expired"] == 0
    assert Job.objects.filter(expired_at__isnull=False).count() == 0


def test_a_teams_own_retention_wins_over_the_studios(alice, settings):
    keep_for_ever = team_with("Archive", members=[alice])
    short = team_with("Social", members=[alice])
    services.team_storage_set(team=keep_for_ever, retention_days=0, storage_quota_gb=None, by=None)
    services.team_storage_set(team=short, retention_days=5, storage_quota_gb=None, by=None)
    settings.RETENTION_DAYS = 30
    archived = aged(stored_job(alice, team=keep_for_ever), 365)
    social = aged(stored_job(alice, team=short), 6)
    personal = aged(stored_job(alice), 6)

    services.jobs_expire()

    assert [j.pk for j in Job.objects.filter(expired_at__isnull=False)] == [social.pk]
    assert all(path.exists() for path in paths(archived) + paths(personal))
    # With no studio default, the team's retention still applies, and only to its videos.
    settings.RETENTION_DAYS = None
    older = aged(stored_job(alice, team=short), 10)
    personal_old = aged(stored_job(alice), 1000)
    assert services.jobs_expire() == 1
    assert (
        Job.objects.get(pk=older.pk).expired_at
        and not Job.objects.get(pk=personal_old.pk).expired_at
    )


def test_an_expired_failed_job_loses_its_input_image(alice, alice_client, retention, simulator):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.media import image_bytes

    upload = SimpleUploadedFile("cat.png", image_bytes("PNG", (64, 36)), content_type="image/png")
    alice_client.post(reverse("jobs:create"), form_data(seconds="auto", image=upload))
    job = Job.objects.get(owner=alice)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED, error="refused")
    image = Path(aged(job, 40).input_image.path)
    assert image.exists()

    services.jobs_expire()

    assert not image.exists()
    assert alice_client.get(reverse("jobs:image", args=[job.pk])).status_code == 410


@pytest.mark.django_db(transaction=True)
def test_two_sweepers_at_once_delete_each_file_once(alice, retention, monkeypatch):
    jobs = [aged(stored_job(alice), 31 + n) for n in range(6)]
    deleted, lock = [], threading.Lock()
    delete = type(default_storage._wrapped).delete

    def counting_delete(storage, name):  # the real delete, counted
        with lock:
            deleted.append(name)
        return delete(storage, name)

    monkeypatch.setattr(type(default_storage._wrapped), "delete", counting_delete)
    results, start = [], threading.Barrier(2)

    def sweeper():
        start.wait()
        try:
            results.append(services.jobs_expire())
        finally:
            connection.close()  # this thread's own connection, before the database goes

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    names = [f.name for job in jobs for f in (job.video, job.poster)]
    assert sorted(deleted) == sorted(names)  # each file once
    assert sum(results) == len(jobs)
    assert Job.objects.filter(expired_at__isnull=False).count() == len(jobs)


def test_a_storage_that_refuses_fails_no_sweep_and_its_files_go_later(
    alice, retention, monkeypatch, caplog
):
    job = aged(stored_job(alice), 31)
    files = paths(job)
    storage_class = type(default_storage._wrapped)
    delete = storage_class.delete

    def refuse(storage, name):  # a storage that is away, as S3 can be
        raise OSError("storage unreachable")

    monkeypatch.setattr(storage_class, "delete", refuse)
    counts = services.sweep()

    assert counts["jobs_expired"] == 1  # the job expired; its files wait
    assert all(path.exists() for path in files)
    waiting = list(StoredFileDeletion.objects.all())
    assert len(waiting) == 2 and "storage unreachable" in waiting[0].last_error

    monkeypatch.setattr(storage_class, "delete", delete)
    StoredFileDeletion.objects.update(
        created_at=timezone.now() - timedelta(hours=1), claimed_until=timezone.now()
    )
    assert services.sweep()["files_deleted"] == 2
    assert not any(path.exists() for path in files)
    assert not StoredFileDeletion.objects.exists()


def test_files_left_by_a_process_that_died_mid_deletion_are_deleted_by_the_sweeper(alice):
    job = stored_job(alice)
    video = Path(job.video.path)
    # What a crash right after the commit leaves: the job no longer names the file, a
    # deletion row (its claim long expired) does, and the file is still there.
    Job.objects.filter(pk=job.pk).update(video="", deleted_at=timezone.now())
    StoredFileDeletion.objects.create(
        name=job.video.name,
        attempts=1,
        created_at=timezone.now() - timedelta(minutes=10),
        claimed_until=timezone.now() - timedelta(minutes=9),
    )

    assert services.sweep()["files_deleted"] == 1

    assert not video.exists() and not StoredFileDeletion.objects.exists()


def test_a_poster_made_after_its_job_expired_leaves_no_file(alice, retention, media_root):
    job = aged(stored_job(alice, poster=False), 31)
    assert services.jobs_expire() == 1

    services.job_make_poster(job_id=job.pk)

    assert not Job.objects.get(pk=job.pk).poster
    assert not list((media_root / "posters").rglob("*.jpg"))


# What people see of an expired video --------------------------------------------------------


def test_the_expired_video_page_says_when_and_its_file_urls_answer_410(
    alice, alice_client, retention
):
    job = aged(stored_job(alice, "a heron on a pier"), 31)
    services.share_create(job=job)
    services.jobs_expire()

    page = alice_client.get(reverse("jobs:detail", args=[job.pk]))

    text = visible_text(page)
    assert page.status_code == 200
    today = timezone.localdate()
    assert f"Expired on {today.day} {today:%B %Y}." in text
    assert "keeps videos for 30 days" in text and "a heron on a pier" in text
    assert "<video" not in page.content.decode()
    for name in ("jobs:video", "jobs:poster", "jobs:image"):
        response = alice_client.get(reverse(name, args=[job.pk]))
        assert response.status_code == 410
        assert f"This video expired on {today.day} {today:%B %Y}" in response.content.decode()
    gallery = alice_client.get(reverse("jobs:list"))
    assert "Expired" in visible_text(gallery)
    assert Job.objects.get(pk=job.pk).share_token is None  # its link ended with it


def test_the_api_says_an_expired_job_expired(alice, alice_key, api, retention):
    job = aged(stored_job(alice, response_format="b64_json"), 31)
    services.jobs_expire()

    body = api.get(alice_key, f"/v1/jobs/{job.pk}").json()
    content = api.get(alice_key, f"/v1/jobs/{job.pk}/content")

    assert body["status"] == "succeeded" and body["error"]["code"] == "expired"
    assert body["expired_at"] > 0
    assert content.status_code == 410 and content.json()["error"]["code"] == "expired"


# The star ------------------------------------------------------------------------------------


def test_the_owner_stars_a_video_with_htmx_and_it_is_kept(alice, alice_client, retention):
    job = aged(stored_job(alice), 25)

    response = alice_client.post(
        reverse("jobs:star", args=[job.pk]), {"starred": "1"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert "★ Starred" in response.content.decode() and 'aria-pressed="true"' in (
        response.content.decode()
    )
    aged(job, 60)
    services.jobs_expire()
    assert all(path.exists() for path in paths(job))
    # Taking the star off lets it expire at the next sweep.
    alice_client.post(reverse("jobs:star", args=[job.pk]), {"starred": "0"})
    services.jobs_expire()
    assert Job.objects.get(pk=job.pk).expired_at is not None


def test_a_teams_manager_may_star_its_videos_and_a_member_or_stranger_may_not(
    alice, bob, django_user_model, client, retention
):
    carol = django_user_model.objects.create_user("carol", password="pw")
    dave = django_user_model.objects.create_user("dave", password="pw")
    team_with("Design", members=[alice, bob], managers=[carol])
    design = alice.memberships.get().team
    job = stored_job(alice, team=design)
    url = reverse("jobs:star", args=[job.pk])

    for outsider in (bob, dave):
        client.force_login(outsider)
        assert client.post(url, {"starred": "1"}).status_code == 404
    assert Job.objects.get(pk=job.pk).starred_at is None
    client.force_login(bob)
    card = client.get(reverse("teams:videos", args=[design.pk])).content.decode()
    assert "Kept until" in card and 'name="starred"' not in card  # he sees, he does not act

    client.force_login(carol)
    assert client.post(url, {"starred": "1"}).status_code == 302
    assert Job.objects.get(pk=job.pk).starred_at is not None


def test_a_star_pressed_after_the_video_expired_says_so(alice, alice_client, retention):
    job = aged(stored_job(alice), 31)
    services.jobs_expire()

    response = alice_client.post(reverse("jobs:star", args=[job.pk]), {"starred": "1"}, follow=True)

    assert "Too late: this video has expired" in visible_text(response)
    assert Job.objects.get(pk=job.pk).starred_at is None


# Seven days before ---------------------------------------------------------------------------


def test_the_owner_sees_what_expires_within_seven_days_and_is_emailed_once(
    alice, alice_client, retention, smtp_server
):
    alice.email = "alice@example.com"
    alice.save()
    soon = aged(stored_job(alice, "a fox in the snow"), 25)
    later = aged(stored_job(alice, "a kite over a beach"), 10)

    gallery = visible_text(alice_client.get(reverse("jobs:list")))
    assert "1 of your videos expires within 7 days" in gallery
    expiring = visible_text(alice_client.get(reverse("jobs:list") + "?keep=expiring"))
    assert "a fox in the snow" in expiring and "a kite over a beach" not in expiring

    assert services.expiry_warnings_send() == 1
    assert services.expiry_warnings_send() == 0  # the beat fired twice: nothing more
    email = OutgoingEmail.objects.get(key__startswith="expiry-warning:")
    assert email.to == "alice@example.com" and "a fox in the snow" in email.text
    assert "a kite over a beach" not in email.text
    expires = soon.created_at + timedelta(days=30)
    assert f"deleted on {expires.day} {expires:%B %Y}" in email.text
    assert services.email_send(email_id=email.pk) == "sent"
    assert len(smtp_server.mailbox.to("alice@example.com")) == 1
    # The later one is warned about once it too is within seven days, in a new email.
    aged(later, 24)
    assert services.expiry_warnings_send(now=timezone.now() + timedelta(days=1)) == 1


def test_no_warning_email_for_an_owner_who_turned_it_off_or_a_starred_video(alice, bob, retention):
    alice.email, bob.email = "alice@example.com", "bob@example.com"
    alice.save(), bob.save()
    services.alert_preferences_save(user=alice, choices={"expiry_warning": False})
    aged(stored_job(alice), 25)
    starred = aged(stored_job(bob), 25)
    services.job_star_set(job=starred, starred=True)

    assert services.expiry_warnings_send() == 0
    assert not OutgoingEmail.objects.filter(key__startswith="expiry-warning:").exists()


def test_a_changed_team_retention_warns_again(alice, settings):
    alice.email = "alice@example.com"
    alice.save()
    team = team_with("Design", members=[alice])
    services.team_storage_set(team=team, retention_days=30, storage_quota_gb=None, by=None)
    job = aged(stored_job(alice, team=team), 25)
    assert services.expiry_warnings_send() == 1

    team.refresh_from_db()
    services.team_storage_set(team=team, retention_days=28, storage_quota_gb=None, by=None)

    assert services.expiry_warnings_send(now=timezone.now() + timedelta(days=1)) == 1
    assert Job.objects.get(pk=job.pk).expiry_warned_days == 28
    assert AuditEvent.objects.filter(summary__contains="keeps its videos: 28 days").exists()


# Storage used ---------------------------------------------------------------------------------


def test_sizes_are_recorded_as_files_are_stored(alice, alice_client, simulator):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.helpers import run_job_now
    from tests.media import image_bytes

    job = stored_job(alice)
    assert job.stored_bytes == sum(path.stat().st_size for path in paths(job))

    png = image_bytes("PNG", (64, 36))
    upload = SimpleUploadedFile("cat.png", png, content_type="image/png")
    alice_client.post(reverse("jobs:create"), form_data(seconds="auto", image=upload))
    with_image = Job.objects.exclude(pk=job.pk).get(owner=alice)
    assert with_image.stored_bytes == len(png)
    run_job_now(with_image.pk)
    with_image.refresh_from_db()
    assert with_image.stored_bytes == sum(path.stat().st_size for path in paths(with_image))


def test_the_gallery_shows_each_person_their_own_storage_and_each_team_its_own(alice, bob, client):
    design = team_with("Design", members=[alice])
    team_with("Marketing", members=[bob])
    mine = stored_job(alice)
    team_video = stored_job(alice, team=design)
    bobs = stored_job(bob)
    services.team_storage_set(
        team=design, retention_days=None, storage_quota_gb=Decimal("2"), by=None
    )
    from jobs.templatetags.studio import bytes_size

    client.force_login(alice)
    text = visible_text(client.get(reverse("jobs:list")))
    assert f"Storage: {bytes_size(mine.stored_bytes + team_video.stored_bytes)}." in text
    team_text = visible_text(client.get(reverse("teams:videos", args=[design.pk])))
    assert f"Storage: {bytes_size(team_video.stored_bytes)} of the team's 2 GB quota" in team_text

    client.force_login(bob)
    assert f"Storage: {bytes_size(bobs.stored_bytes)}." in visible_text(client.get("/jobs/"))
    assert client.get(reverse("teams:videos", args=[design.pk])).status_code == 404


def test_staff_see_storage_per_user_and_per_team_in_the_admin(alice, client, django_user_model):
    from jobs.templatetags.studio import bytes_size

    design = team_with("Design", members=[alice])
    job = stored_job(alice, team=design)
    staff = django_user_model.objects.create_superuser("olga", "olga@example.com", "pw")
    client.force_login(staff)

    users = visible_text(client.get(reverse("admin:auth_user_changelist")))
    teams = visible_text(client.get(reverse("admin:jobs_team_changelist")))

    assert bytes_size(job.stored_bytes) in users and bytes_size(job.stored_bytes) in teams


def test_staff_set_a_teams_retention_and_quota_in_the_admin_and_it_is_audited(
    client, django_user_model
):
    design = team_with("Design")
    staff = django_user_model.objects.create_superuser("olga", "olga@example.com", "pw")
    client.force_login(staff)
    url = reverse("admin:jobs_team_change", args=[design.pk])
    data = {
        "name": "Design",
        "all_models": "on",
        "retention_days": "90",
        "storage_quota_gb": "5",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }

    response = client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    design.refresh_from_db()
    assert (design.retention_days, design.storage_quota_gb) == (90, Decimal("5"))
    event = AuditEvent.objects.get(summary__contains="keeps its videos")
    assert event.actor == staff and event.after == {
        "retention_days": 90,
        "storage_quota_gb": "5",
    }


def test_record_storage_sizes_measures_videos_stored_before_sizes_were_recorded(alice, capsys):
    job = stored_job(alice)
    Job.objects.filter(pk=job.pk).update(stored_bytes=None)  # as the migration leaves them

    call_command("record_storage_sizes")

    assert Job.objects.get(pk=job.pk).stored_bytes == sum(p.stat().st_size for p in paths(job))
    assert "Measured 1 jobs." in capsys.readouterr().out


# The team's storage quota --------------------------------------------------------------------


@pytest.fixture
def full_team(alice):
    design = team_with("Design", members=[alice], default_for=[alice])
    stored_job(alice, team=design)  # a few hundred KB
    services.team_storage_set(
        team=design, retention_days=None, storage_quota_gb=Decimal("0.0001"), by=None
    )  # 100 KB
    return design


def test_a_full_team_refuses_a_new_video_on_the_form_with_its_reason(
    alice, alice_client, full_team
):
    response = alice_client.post(reverse("jobs:create"), form_data(charge_to=str(full_team.pk)))

    text = html.unescape(visible_text(response))
    assert response.status_code == 200
    assert "The Design team's storage is full: its videos take" in text
    used = bytes_size(Job.objects.get(team=full_team).stored_bytes)
    assert (
        f"its videos take {used} of its 100 KB quota" in text
        and "ask an admin to raise the quota" in text
    )
    assert Job.objects.filter(owner=alice).count() == 1
    # Personal videos are not the team's: they go ahead.
    alice_client.post(reverse("jobs:create"), form_data(charge_to="personal"))
    assert Job.objects.filter(owner=alice, team__isnull=True).count() == 1


def test_a_full_team_refuses_a_new_video_through_the_api(alice, api, full_team):
    _, key = tokens.token_create(user=alice, name="design script", team=full_team)

    response = api.post(
        key,
        "/v1/openai/videos/generations?async=true",
        json={"model": "ir/test-video", "prompt": "a fox"},
    )

    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "storage_quota_full" and error["type"] == "insufficient_storage"
    assert "The Design team's storage is full" in error["message"]


def test_the_expiry_email_is_offered_only_where_retention_applies(alice, client, settings):
    client.force_login(alice)
    label = "Email me before videos of mine expire"

    assert label not in visible_text(client.get("/account/notifications/"))
    settings.RETENTION_DAYS = 30
    assert label in visible_text(client.get("/account/notifications/"))
    # Only team videos, and the team keeps them for ever: nothing of hers expires.
    settings.TEAM_REQUIRED = True
    team = team_with("Archive", members=[alice])
    services.team_storage_set(team=team, retention_days=0, storage_quota_gb=None, by=None)
    assert label not in visible_text(client.get("/account/notifications/"))
