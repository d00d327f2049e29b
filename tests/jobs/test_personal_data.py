"""A person's own data: the streamed .zip of everything the studio holds about them, on local
disk and on S3 (tests/s3.py), and deleting their account."""

import io
import json
import textwrap
import tracemalloc
import uuid
import zipfile
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from jobs import selectors, services
from jobs.models import AuditEvent, Budget, CostEntry, Job, SpendDay
from jobs.services import tokens
from jobs.zipstream import CHUNK_BYTES, ZipStream
from tests.factories import TEST_MODEL, filed_job, make_entry, set_budget, team_with
from tests.helpers import run_with_settings, visible_text
from tests.ledger_checks import assert_rollup_matches_ledger
from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from videostudio.settings import s3_storage

pytestmark = pytest.mark.usefixtures("fast_passwords")

DATA = reverse("account_data")
EXPORT = reverse("account_data_export")
DELETE = reverse("account_delete")
MEGABYTE = 1024 * 1024


# Storage: local disk, or a bucket of the test's own on moto's S3 server --------------------------


@pytest.fixture(scope="module")
def s3_server():
    with S3Server() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def storage(request, settings, media_root):
    """Where the test's files are stored; `.names()` lists every file there."""
    if request.param == "local":

        class Local:
            kind = "local"

            def names(self):
                return sorted(
                    str(path.relative_to(media_root))
                    for path in media_root.rglob("*")
                    if path.is_file()
                )

        return Local()
    server = request.getfixturevalue("s3_server")
    bucket = f"data-{uuid.uuid4().hex[:12]}"
    server.client.create_bucket(Bucket=bucket)
    options = s3_storage(
        bucket=bucket,
        endpoint_url=server.url,
        region=REGION,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        url_expiry=60,
    )
    settings.STORAGES = {**settings.STORAGES, "default": options}

    class Bucket:
        kind = "s3"

        def names(self):
            return server.keys(bucket)

    return Bucket()


# The people and their work ----------------------------------------------------------------------


def charged(job, cost="0.25"):
    """The job as the ledger has it after a paid call."""
    from django.db import transaction

    with transaction.atomic():
        services.ledger_record(job=job, outcome=CostEntry.Outcome.CHARGED, cost=Decimal(cost))
    Job.objects.filter(pk=job.pk).update(cost=Decimal(cost))
    job.refresh_from_db()
    return job


@pytest.fixture
def world(alice, bob, django_user_model):
    """Alice with a personal video and one for the Design team (Bob is in it too); Bob with his
    own personal video and one for Design; Carol in the Sound team, which Alice left after
    making a video for it. Every job has a video, poster and input image, and a ledger entry."""
    carol = django_user_model.objects.create_user("carol", password="carol-password-1")
    design = team_with("Design", members=[alice, bob])
    sound = team_with("Sound", members=[alice, carol])
    world = {
        "design": design,
        "sound": sound,
        "carol": carol,
        "alice_personal": charged(filed_job(alice, "alice walks a heron")),
        "alice_design": charged(filed_job(alice, "alice draws a logo", team=design), "0.50"),
        "alice_sound": charged(filed_job(alice, "alice records rain", team=sound), "0.10"),
        "bob_personal": charged(filed_job(bob, "bob's secret prompt")),
        "bob_design": charged(filed_job(bob, "bob's design prompt", team=design)),
        "carol_sound": charged(filed_job(carol, "carol's sound prompt", team=sound)),
    }
    services.membership_remove(team=sound, user=alice, by=None)
    return world


def read_zip(response) -> tuple[zipfile.ZipFile, bytes]:
    body = b"".join(response.streaming_content)
    return zipfile.ZipFile(io.BytesIO(body)), body


def stored_bytes(field_file) -> bytes:
    with default_storage.open(field_file.name, "rb") as handle:
        return handle.read()


# The export -------------------------------------------------------------------------------------


def test_the_export_holds_exactly_alices_files_and_her_json_and_nothing_of_anyone_else(
    storage, alice_client, alice, world
):
    personal, design, sound = world["alice_personal"], world["alice_design"], world["alice_sound"]
    _, key = tokens.token_create(user=alice, name="render farm")
    set_budget(alice, "20")

    response = alice_client.post(EXPORT)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="videostudio-alice-')
    archive, body = read_zip(response)
    assert archive.testzip() is None
    names = archive.namelist()
    # Her personal video and the one for Design (she is still in it), each with its poster and
    # input image; not the one for Sound, which she left; nothing of Bob's or Carol's.
    files = sorted(name for name in names if "/" in name)
    assert len(files) == 6
    assert {name.split("/")[0] for name in files} == {"videos", "posters", "images"}
    assert sum(personal.pk.hex[:8] in name for name in files) == 3
    assert sum(design.pk.hex[:8] in name for name in files) == 3
    assert sorted(set(names) - set(files)) == ["README.txt", "data.json"]

    data = json.loads(archive.read("data.json"))
    jobs = {job["id"]: job for job in data["jobs"]}
    assert set(jobs) == {str(personal.pk), str(design.pk), str(sound.pk)}
    video_entry = jobs[str(personal.pk)]["files"]["video"]
    assert archive.read(video_entry) == stored_bytes(personal.video)
    assert archive.read(jobs[str(design.pk)]["files"]["input_image"]) == stored_bytes(
        design.input_image
    )
    assert jobs[str(design.pk)]["prompt"] == "alice draws a logo"
    assert jobs[str(design.pk)]["team"] == "Design"
    assert "prompt" not in jobs[str(sound.pk)] and "files" not in jobs[str(sound.pk)]
    assert "which you have left" in jobs[str(sound.pk)]["note"]

    assert data["profile"]["username"] == "alice"
    assert data["ledger"]["total_cost"] == "0.850000"
    assert {entry["job"] for entry in data["ledger"]["entries"]} == set(jobs)
    assert [team["team"] for team in data["teams"]] == ["Design"]
    assert data["api_tokens"][0]["name"] == "render farm"
    assert data["budgets"][0] == {
        "budget": "Your personal budget",
        "limit": "20.000000",
        "period": "month",
        "spent_this_period": "0.250000",
        "held_by_jobs_in_flight": "0.000000",
    }
    assert data["notification_preferences"]["job_ready"] is True
    assert "Removed alice from the Sound team" in [e["summary"] for e in data["audit_events"]]

    # Never a secret, and never anyone else: neither names nor prompts nor bytes.
    token = alice.api_tokens.get()
    for secret in (key, token.key_hash, token.webhook_secret or key):
        assert secret.encode() not in body
    for other in ("bob", "carol", "secret prompt", "sound prompt"):
        assert other.encode() not in body
    for job in (world["bob_personal"], world["bob_design"], world["carol_sound"]):
        assert str(job.pk).encode() not in body
        assert job.pk.hex[:8].encode() not in body


def test_bob_exports_only_his_own_though_he_shares_a_team_with_alice(client, bob, world):
    client.force_login(bob)

    archive, body = read_zip(client.post(EXPORT))

    data = json.loads(archive.read("data.json"))
    assert {job["id"] for job in data["jobs"]} == {
        str(world["bob_personal"].pk),
        str(world["bob_design"].pk),
    }
    assert b"alice" not in body


def test_a_deleted_video_is_listed_without_files_and_a_missing_file_is_left_out(
    alice_client, alice
):
    gone = charged(filed_job(alice, "a deleted one"))
    services.job_delete(job=gone)
    lost = filed_job(alice, "a lost one")
    default_storage.delete(lost.video.name)  # an operator's mistake: the row still names it

    archive, _ = read_zip(alice_client.post(EXPORT))

    data = {job["id"]: job for job in json.loads(archive.read("data.json"))["jobs"]}
    assert "prompt" not in data[str(gone.pk)] and data[str(gone.pk)]["deleted_at"]
    assert data[str(lost.pk)]["files"]["video"] is None
    assert data[str(lost.pk)]["files"]["poster"].startswith("posters/")
    assert [n for n in archive.namelist() if n.startswith("videos/")] == []


def test_the_export_needs_a_post_and_a_log_in(alice_client):
    from django.test import Client

    assert alice_client.get(EXPORT).status_code == 405
    response = Client().post(EXPORT)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_data_page_says_what_is_in_the_export_and_offers_it(alice_client, alice, world):
    text = visible_text(alice_client.get(DATA))

    assert "Download my data (.zip)" in text
    assert "never their keys" in text
    assert "Videos you made for a team stay with that team (2: Design, Sound)." in text


# Streaming ----------------------------------------------------------------------------------


def test_a_big_video_streams_through_the_zip_in_chunks_never_whole(alice):
    """Every piece the response sends is about one read, and the memory the whole download
    takes stays far under the video's size (tracemalloc counts every Python allocation)."""
    size = 24 * MEGABYTE
    big = Job.objects.create(owner=alice, prompt="big", model=TEST_MODEL, status="succeeded")
    big.video.save("big.mp4", ContentFile(bytes(range(256)) * (size // 256)))

    stream = ZipStream()
    tracemalloc.start()
    try:
        chunks = [len(chunk) for chunk in stream.add_stored_file("videos/big.mp4", big.video)]
        chunks += [len(chunk) for chunk in stream.close()]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(chunks) >= size // CHUNK_BYTES
    assert max(chunks) <= CHUNK_BYTES + 1024
    assert sum(chunks) > size
    assert peak < 2 * MEGABYTE


def test_a_big_video_on_s3_streams_from_the_bucket_never_whole(s3_server):
    """The same on S3, in a fresh process (moto's server in this one holds the object and would
    count in the measure): the bucket's answer is read as it arrives, a chunk at a time."""
    bucket = f"big-{uuid.uuid4().hex[:12]}"
    s3_server.client.create_bucket(Bucket=bucket)
    size = 24 * MEGABYTE
    s3_server.client.put_object(
        Bucket=bucket, Key="videos/big.mp4", Body=bytes(range(256)) * (size // 256)
    )
    s3_server.client.put_object(Bucket=bucket, Key="videos/small.mp4", Body=b"small")
    code = textwrap.dedent(
        """
        import json, tracemalloc, django
        django.setup()
        from django.core.files.storage import default_storage
        from django.db.models.fields.files import FieldFile
        from jobs.models import Job
        from jobs.zipstream import ZipStream
        field = Job._meta.get_field("video")
        video = FieldFile(Job(), field, "videos/big.mp4")
        assert video.storage is default_storage
        stream = ZipStream()
        # A small file first: botocore reads its models of S3 (12 MB of JSON) on first use.
        list(stream.add_stored_file("small.mp4", FieldFile(Job(), field, "videos/small.mp4")))
        tracemalloc.start()
        chunks = [len(c) for c in stream.add_stored_file("videos/big.mp4", video)]
        chunks += [len(c) for c in stream.close()]
        print(json.dumps({"chunks": chunks, "peak": tracemalloc.get_traced_memory()[1]}))
        """
    )
    completed = run_with_settings(
        code,
        STORAGE_BACKEND="s3",
        S3_BUCKET=bucket,
        S3_ENDPOINT_URL=s3_server.url,
        S3_REGION=REGION,
        S3_ACCESS_KEY_ID=ACCESS_KEY,
        S3_SECRET_ACCESS_KEY=SECRET_KEY,
    )
    assert completed.returncode == 0, completed.stderr
    measured = json.loads(completed.stdout.strip().splitlines()[-1])
    assert len(measured["chunks"]) >= size // CHUNK_BYTES
    assert max(measured["chunks"]) <= CHUNK_BYTES + 1024
    assert sum(measured["chunks"]) > size
    assert measured["peak"] < 2 * MEGABYTE


# Deleting the account ------------------------------------------------------------------------


def review_totals(client) -> str:
    """The staff cost review's totals row for this month, as a person reads it."""
    text = visible_text(client.get(reverse("costs:review")))
    return text[text.index("Total (") :][:80]


def test_deleting_her_account_leaves_nothing_of_alices_files_and_the_ledger_totals_unchanged(
    storage, client, admin_client, alice, bob, world, django_capture_on_commit_callbacks
):
    personal, design = world["alice_personal"], world["alice_design"]
    alices_personal_files = {personal.video.name, personal.poster.name, personal.input_image.name}
    before_files = set(storage.names())
    assert alices_personal_files <= before_files
    before_totals = (CostEntry.objects.count(), sum(e.cost for e in CostEntry.objects.all()))
    before_review = review_totals(admin_client)
    before_design = selectors.spend_totals(CostEntry.objects.filter(team=world["design"]))
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=True):  # the files go after the commit
        response = client.post(DELETE, {"password": "alice-password-1"})

    assert response.status_code == 200
    assert "Your account is deleted" in visible_text(response)
    assert not get_user_model().objects.filter(username="alice").exists()
    # Her personal files are gone from the storage, and only they.
    assert set(storage.names()) == before_files - alices_personal_files
    # Every entry stays, naming nobody, so every total is the same to the cent.
    assert (CostEntry.objects.count(), sum(e.cost for e in CostEntry.objects.all())) == (
        before_totals
    )
    assert review_totals(admin_client) == before_review
    assert selectors.spend_totals(CostEntry.objects.filter(team=world["design"])) == before_design
    assert CostEntry.objects.get(job=personal).user_id is None
    assert_rollup_matches_ledger()
    # The personal job stays only as a deleted row for its cost.
    personal.refresh_from_db()
    assert personal.owner_id is None and personal.deleted_at and personal.prompt == ""
    assert not (personal.video or personal.poster or personal.input_image)
    # The Design video stays with Design, files and all.
    design.refresh_from_db()
    assert design.owner_id is None and design.deleted_at is None
    assert design.prompt == "alice draws a logo" and design.video.name in storage.names()


def test_after_alice_deletes_her_account_the_team_still_sees_her_team_video(
    client, alice, bob, world
):
    design = world["alice_design"]
    services.account_delete(user=alice)
    client.force_login(bob)

    gallery = client.get(reverse("teams:videos", args=[world["design"].pk]))
    page = client.get(reverse("jobs:detail", args=[design.pk]))
    video = client.get(reverse("jobs:video", args=[design.pk]))

    assert gallery.status_code == page.status_code == video.status_code == 200
    assert "alice draws a logo" in visible_text(gallery)
    assert "Made by a deleted account" in visible_text(gallery)
    assert "A video by a deleted account" in visible_text(page)
    assert b"".join(video.streaming_content) == stored_bytes(design.video)


def test_no_page_that_showed_alice_breaks_once_she_is_gone(client, admin_client, alice, bob, world):
    design = world["design"]
    services.membership_set(team=design, user=bob, role="manager", by=None)
    unknown = make_entry(alice, TEST_MODEL, "0", None, outcome="unknown", possible=Decimal("1"))
    services.account_delete(user=alice)
    client.force_login(bob)
    alices_job = world["alice_design"].pk

    pages = {
        "team review": client.get(reverse("teams:review", args=[design.pk])),
        "team entries": client.get(reverse("teams:entries", args=[design.pk]), {"user": "bob"}),
        "team budgets": client.get(reverse("teams:budgets", args=[design.pk])),
        "team gallery": client.get(reverse("teams:videos", args=[design.pk])),
        "job page": client.get(reverse("jobs:detail", args=[alices_job])),
        "card": client.get(reverse("jobs:card", args=[alices_job])),
        "review": admin_client.get(reverse("costs:review")),
        "entries": admin_client.get(reverse("costs:entries"), {"team": str(design.pk)}),
        "reconciliation": admin_client.get(reverse("costs:reconciliation")),
        "csv": admin_client.get(reverse("costs:export")),
        "admin jobs": admin_client.get(reverse("admin:jobs_job_changelist")),
        "admin job": admin_client.get(reverse("admin:jobs_job_change", args=[alices_job])),
        "admin ledger": admin_client.get(reverse("admin:jobs_costentry_changelist")),
        "admin audit": admin_client.get(reverse("admin:jobs_auditevent_changelist")),
        "admin users": admin_client.get(reverse("admin:auth_user_changelist")),
    }

    # A finished card is served with 286, which stops htmx polling it.
    assert {name: r.status_code for name, r in pages.items()} == dict.fromkeys(pages, 200) | {
        "card": 286
    }
    assert "(deleted accounts)" in visible_text(pages["review"])
    assert "(deleted account)" in visible_text(pages["reconciliation"])
    csv_text = b"".join(pages["csv"].streaming_content).decode()
    assert "(deleted account)" in csv_text and ",alice," not in csv_text
    # The unknown outcome can still be reconciled, and the roll-ups stay exact.
    assert services.ledger_reconcile(entry=unknown, charged=True, by=None)
    assert_rollup_matches_ledger()


def test_alices_api_tokens_are_refused_at_once_and_her_session_ends(client, api, alice, alice_key):
    client.force_login(alice)
    assert api.get(alice_key, "/v1/models").status_code == 200

    client.post(DELETE, {"password": "alice-password-1"})

    assert api.get(alice_key, "/v1/models").status_code == 401
    assert client.get(reverse("jobs:list")).status_code == 302  # to the log-in page


def test_another_browser_of_alices_is_logged_out_too(client, alice):
    from django.test import Client

    elsewhere = Client()
    elsewhere.force_login(alice)
    client.force_login(alice)

    client.post(DELETE, {"password": "alice-password-1"})

    response = elsewhere.get(reverse("jobs:list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_wrong_password_deletes_nothing(alice_client, alice):
    job = filed_job(alice)

    response = alice_client.post(DELETE, {"password": "not-it"})

    assert response.status_code == 200
    assert "That is not your password. Nothing was deleted." in visible_text(response)
    assert get_user_model().objects.filter(pk=alice.pk).exists()
    assert default_storage.exists(job.video.name)


def test_a_single_sign_on_account_confirms_by_typing_its_username(client, django_user_model):
    dana = django_user_model.objects.create_user("dana")  # no password: made by single sign-on
    client.force_login(dana)

    page = visible_text(client.get(DELETE))
    wrong = client.post(DELETE, {"username": "Dana"})
    right = client.post(DELETE, {"username": "dana"})

    assert "Type your username, dana, to confirm" in page
    assert "you start a new, empty account" in page
    assert "That is not your username" in visible_text(wrong)
    assert "Your account is deleted" in visible_text(right)
    assert not django_user_model.objects.filter(username="dana").exists()


def test_the_confirmation_page_says_team_videos_stay_with_the_team_before_anything_happens(
    alice_client, alice, world
):
    text = visible_text(alice_client.get(DELETE))

    assert "Videos you made for a team stay with that team (2: Design, Sound)" in text
    assert "Your personal videos are deleted (1 video)" in text
    assert "What you spent stays in the studio's accounts" in text
    assert get_user_model().objects.filter(pk=alice.pk).exists()


def test_queued_jobs_are_canceled_and_a_running_one_waits_for_its_cost(alice_client, alice):
    queued = Job.objects.create(owner=alice, prompt="waiting", model=TEST_MODEL, hold=1)
    running = Job.objects.create(
        owner=alice, prompt="paid call", model=TEST_MODEL, status=Job.Status.RUNNING, attempt=1
    )

    refused = alice_client.post(DELETE, {"password": "alice-password-1"})

    assert "One of your videos is being made right now" in visible_text(refused)
    assert get_user_model().objects.filter(pk=alice.pk).exists()
    queued.refresh_from_db()
    assert queued.status == Job.Status.QUEUED  # a refusal changes nothing

    Job.objects.filter(pk=running.pk).update(status=Job.Status.SUCCEEDED)
    charged(running)
    done = alice_client.post(DELETE, {"password": "alice-password-1"})

    assert "1 queued job was canceled" in visible_text(done)
    assert not Job.objects.filter(pk=queued.pk).exists()  # never sent: nothing to count
    assert CostEntry.objects.get(job=running).user_id is None


@pytest.mark.usefixtures("catalog")
def test_a_submit_that_loses_the_race_with_its_accounts_deletion_is_refused_not_broken(alice):
    """The submit's request began while Alice was still there; her deletion committed first."""
    services.account_delete(user=get_user_model().objects.get(pk=alice.pk), by=None)

    with pytest.raises(services.SubmitRefusedError, match="This account has been deleted"):
        services.job_create(
            owner=alice, prompt="too late", model=TEST_MODEL, size="auto", seconds=5,
            response_format="url",
        )  # fmt: skip

    assert not Job.objects.exists()
    assert not Budget.objects.exists()  # no personal budget made for a gone account


def test_the_break_glass_account_and_the_last_superuser_cannot_delete_themselves(
    client, settings, django_user_model
):
    root = django_user_model.objects.create_superuser("root", password="root-password-1")
    client.force_login(root)

    last = client.post(DELETE, {"password": "root-password-1"})
    assert "last superuser" in visible_text(last)

    django_user_model.objects.create_superuser("other", password="other-password-1")
    settings.BREAK_GLASS_USERNAME = "root"
    glass = client.post(DELETE, {"password": "root-password-1"})
    assert "break-glass account" in visible_text(glass)
    assert django_user_model.objects.filter(username="root").exists()

    settings.BREAK_GLASS_USERNAME = ""
    assert "Your account is deleted" in visible_text(
        client.post(DELETE, {"password": "root-password-1"})
    )


def test_alices_own_budgets_and_their_roll_ups_go_and_the_teams_stay_exact(alice, bob, world):
    design = world["design"]
    set_budget(alice, "30")
    services.budget_set(
        level=Budget.Level.MEMBER, team=design, user=alice, limit=Decimal("5"), changed_by=None
    )
    team_day = SpendDay.objects.get(scope=f"team:{design.pk}")

    services.account_delete(user=alice)

    assert not Budget.objects.filter(user_id=alice.pk).exists()
    assert not SpendDay.objects.filter(scope=f"user:{alice.pk}").exists()
    assert not SpendDay.objects.filter(scope=f"member:{design.pk}:{alice.pk}").exists()
    assert SpendDay.objects.get(scope=f"team:{design.pk}").cost == team_day.cost
    assert_rollup_matches_ledger()


def test_the_audit_trail_keeps_its_events_about_alice_without_pointing_at_her(alice, world):
    about_alice = AuditEvent.objects.filter(user=alice).count()
    assert about_alice

    services.account_delete(user=alice)

    assert AuditEvent.objects.filter(user__isnull=True).count() >= about_alice
    left = AuditEvent.objects.filter(
        team=world["design"], action=AuditEvent.Action.MEMBER_REMOVED
    ).get()
    assert left.summary.startswith("A member of the Design team deleted their account")
    assert "alice" not in left.summary


def test_staff_deleting_a_user_in_the_admin_go_through_the_same_deletion(
    storage, admin_client, alice, world, django_capture_on_commit_callbacks
):
    personal = world["alice_personal"]

    page = admin_client.get(reverse("admin:auth_user_delete", args=[alice.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:auth_user_delete", args=[alice.pk]), {"post": "yes"}
        )

    assert page.status_code == 200
    assert response.status_code == 302
    assert personal.video.name not in storage.names()
    assert CostEntry.objects.get(job=personal).user_id is None
    history = LogEntry.objects.filter(object_id=str(alice.pk), content_type__model="user")
    assert history.exists() and {entry.object_repr for entry in history} == {"(deleted account)"}


def test_the_admin_refuses_to_delete_a_user_with_a_video_being_made(admin_client, alice):
    Job.objects.create(owner=alice, model=TEST_MODEL, status=Job.Status.STORING, attempt=1)

    response = admin_client.post(
        reverse("admin:auth_user_delete", args=[alice.pk]), {"post": "yes"}, follow=True
    )

    # The admin capitalises its messages.
    assert "Alice was not deleted. One of its videos is being made right now" in visible_text(
        response
    )
    assert get_user_model().objects.filter(pk=alice.pk).exists()
