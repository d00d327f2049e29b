"""My videos as a gallery: cards, filters, search, pages, and bulk delete and download."""

import io
import re
import shutil
import subprocess
import zipfile
from datetime import UTC, datetime

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from jobs.gallery_forms import MAX_SELECTION
from jobs.models import Job
from jobs.views.gallery import zip_entry_name, zip_stream
from jobs.zipstream import CHUNK_BYTES as ZIP_CHUNK_BYTES
from tests.helpers import visible_text

DONE = Job.Status.SUCCEEDED
GALLERY = reverse("jobs:list")
DELETE = reverse("jobs:delete_selected")
DOWNLOAD = reverse("jobs:download_selected")


def make_job(
    owner, prompt="a heron lands on a pier", *, status=DONE, video=None, poster=None, **kw
):
    """A job written directly, with a stored video and poster when given their bytes."""
    job = Job.objects.create(owner=owner, prompt=prompt, status=status, **kw)
    if video is not None:
        job.video.save(f"{job.pk}.mp4", ContentFile(video), save=False)
    if poster is not None:
        job.poster.save(f"{job.pk}.jpg", ContentFile(poster), save=False)
    if video is not None or poster is not None:
        job.save(update_fields=["video", "poster"])
    return job


def titles(response) -> list[str]:
    """The cards' titles, in the order they show."""
    return re.findall(
        r'class="job-card-title"><a href="[^"]+">([^<]*)</a>', response.content.decode()
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def open_zip(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


# The grid ----------------------------------------------------------------------------------------


def test_each_job_is_a_card_with_prompt_model_duration_cost_date_and_link(alice_client, alice):
    job = make_job(
        alice, "a lighthouse in a storm", model="kling/kling-2.1-standard", seconds="5", cost="0.25"
    )
    Job.objects.filter(pk=job.pk).update(created_at=datetime(2026, 11, 24, 9, 30, tzinfo=UTC))

    response = alice_client.get(GALLERY)
    text = visible_text(response)

    assert titles(response) == ["a lighthouse in a storm"]
    assert f'href="{reverse("jobs:detail", args=[job.pk])}"' in response.content.decode()
    assert "Model kling/kling-2.1-standard" in text
    assert "Duration 5 s" in text
    assert "Cost $0.25" in text
    assert "Submitted 24 Nov 2026, 09:30" in text
    assert "Status Done" in text


def test_a_card_shows_the_poster_when_there_is_one_and_a_placeholder_with_the_status_if_not(
    alice_client, alice
):
    with_poster = make_job(alice, "with a poster", poster=b"\xff\xd8\xff jpeg")
    make_job(alice, "still running", status=Job.Status.RUNNING)

    html = alice_client.get(GALLERY).content.decode()

    assert f'<img src="{reverse("jobs:poster", args=[with_poster.pk])}"' in html
    assert 'alt="First frame of “with a poster”"' in html
    assert html.count("<img ") == 1
    placeholder = re.search(r'class="job-card-placeholder">\s*([^<]*?)\s*</span>', html)
    assert placeholder.group(1) == "Generating…"


def test_a_job_without_a_prompt_reads_image_only(alice_client, alice):
    make_job(alice, "")
    assert titles(alice_client.get(GALLERY)) == ["(image only)"]


def test_a_long_prompt_is_truncated_on_its_card(alice_client, alice):
    make_job(alice, "word " * 60)
    [title] = titles(alice_client.get(GALLERY))
    assert len(title) == 80 and title.endswith("…")


def test_the_gallery_shows_only_my_jobs_and_not_deleted_ones(alice_client, alice, bob):
    make_job(alice, "mine")
    gone = make_job(alice, "deleted one")
    Job.objects.filter(pk=gone.pk).update(deleted_at=gone.created_at)
    make_job(bob, "bobs secret")

    response = alice_client.get(GALLERY)

    assert titles(response) == ["mine"]
    assert "bobs secret" not in response.content.decode()


def test_live_cards_poll_their_own_fragment_and_finished_ones_do_not(alice_client, alice):
    live = make_job(alice, "on its way", status=Job.Status.QUEUED)
    done = make_job(alice, "finished")

    html = alice_client.get(GALLERY).content.decode()

    live_card = re.search(rf'<article id="card-{live.pk}"[^>]*>', html).group(0)
    done_card = re.search(rf'<article id="card-{done.pk}"[^>]*>', html).group(0)
    assert f'hx-get="{reverse("jobs:card", args=[live.pk])}"' in live_card
    assert 'hx-trigger="every 3s"' in live_card and "data-poll" in live_card
    assert "hx-get" not in done_card and "data-poll" not in done_card


@pytest.mark.parametrize("status", sorted(Job.LIVE))
def test_a_live_cards_fragment_keeps_polling(alice_client, alice, status):
    job = make_job(alice, status=status)
    response = alice_client.get(reverse("jobs:card", args=[job.pk]))
    assert response.status_code == 200
    assert 'hx-trigger="every 3s"' in response.content.decode()


@pytest.mark.parametrize("status", sorted(Job.TERMINAL))
def test_a_terminal_cards_fragment_is_286_without_a_trigger(alice_client, alice, status):
    job = make_job(alice, "all done", status=status)
    response = alice_client.get(reverse("jobs:card", args=[job.pk]))
    html = response.content.decode()
    assert response.status_code == 286
    assert f'id="card-{job.pk}"' in html and "all done" in html
    assert "hx-get" not in html and "data-poll" not in html


def test_bob_gets_404_on_alices_card(client, bob, alice):
    job = make_job(alice, "alice's card")
    client.force_login(bob)
    assert client.get(reverse("jobs:card", args=[job.pk])).status_code == 404


def test_my_total_spend_shows_above_the_gallery(alice_client, alice):
    make_job(alice, cost="0.25")
    make_job(alice, cost="0.50")
    assert "Total spend: $0.75" in visible_text(alice_client.get(GALLERY))


def test_no_jobs_yet_invites_a_first_one(alice_client):
    response = alice_client.get(GALLERY)
    assert "No videos yet. Generate your first one." in visible_text(response)


# Filters, search, pages --------------------------------------------------------------------------


def test_the_gallery_filters_by_status(alice_client, alice):
    make_job(alice, "made it")
    make_job(alice, "broke", status=Job.Status.FAILED)
    make_job(alice, "waiting", status=Job.Status.QUEUED)

    assert titles(alice_client.get(GALLERY, {"status": "failed"})) == ["broke"]
    assert titles(alice_client.get(GALLERY, {"status": "succeeded"})) == ["made it"]


def test_the_gallery_filters_by_model_from_the_models_of_my_own_jobs(alice_client, alice, bob):
    make_job(alice, "cheap", model="ir/test-video")
    make_job(alice, "fancy", model="kling/kling-2.1-standard")
    make_job(bob, "bobs", model="openai/sora-2")

    response = alice_client.get(GALLERY, {"model": "kling/kling-2.1-standard"})
    options = re.findall(r'<option value="([^"]*)"', response.content.decode())

    assert titles(response) == ["fancy"]
    assert "ir/test-video" in options and "kling/kling-2.1-standard" in options
    assert "openai/sora-2" not in options


def test_search_finds_words_anywhere_in_the_prompt_whatever_their_case(alice_client, alice):
    make_job(alice, "A Lighthouse in a storm")
    make_job(alice, "a quiet meadow")

    assert titles(alice_client.get(GALLERY, {"q": "lighthouse"})) == ["A Lighthouse in a storm"]
    assert titles(alice_client.get(GALLERY, {"q": "  MEADOW "})) == ["a quiet meadow"]


def test_filters_combine(alice_client, alice):
    make_job(alice, "storm at sea", status=Job.Status.FAILED)
    make_job(alice, "storm at sea again")
    make_job(alice, "calm at sea", status=Job.Status.FAILED)

    response = alice_client.get(GALLERY, {"q": "storm", "status": "failed"})

    assert titles(response) == ["storm at sea"]


def test_an_unknown_filter_value_is_ignored_not_an_error(alice_client, alice):
    make_job(alice, "still here")
    response = alice_client.get(GALLERY, {"status": "exploded", "model": "nope/none", "page": "x"})
    assert response.status_code == 200
    assert titles(response) == ["still here"]


def test_nothing_matching_says_so_with_a_way_back(alice_client, alice):
    make_job(alice, "a cat")
    response = alice_client.get(GALLERY, {"q": "dog"})
    assert "No videos match these filters. Show all my videos." in visible_text(response)


def test_pages_hold_24_cards_and_their_links_keep_the_filters(alice_client, alice):
    for number in range(30):
        make_job(alice, f"storm number {number}")
    make_job(alice, "not a match")

    first = alice_client.get(GALLERY, {"q": "storm"})
    second = alice_client.get(GALLERY, {"q": "storm", "page": "2"})

    assert len(titles(first)) == 24 and len(titles(second)) == 6
    assert set(titles(first)).isdisjoint(titles(second))
    assert "not a match" not in titles(first) + titles(second)
    assert "1–24 of 30 videos" in visible_text(first)
    assert 'href="?q=storm&amp;page=2"' in first.content.decode()
    assert 'href="?q=storm&amp;page=1"' in second.content.decode()


def test_an_htmx_request_gets_the_gallery_alone_and_a_history_restore_the_page(alice_client, alice):
    make_job(alice, "a storm")

    fragment = alice_client.get(GALLERY, {"q": "storm"}, headers={"HX-Request": "true"})
    restore = alice_client.get(
        GALLERY, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )

    html = fragment.content.decode()
    assert html.lstrip().startswith('<section id="gallery"')
    assert "<html" not in html and titles(fragment) == ["a storm"]
    assert "HX-Request" in fragment["Vary"]
    assert "<html" in restore.content.decode()


# Bulk delete -------------------------------------------------------------------------------------


def test_delete_selected_asks_first_and_changes_nothing_until_confirmed(alice_client, alice):
    job = make_job(alice, "to be deleted", video=b"mp4")

    response = alice_client.post(DELETE, {"job": [job.pk]})

    assert response.status_code == 200
    assert "Delete 1 video?" in visible_text(response)
    assert Job.objects.get(pk=job.pk).deleted_at is None
    assert 'name="confirmed" value="1"' in response.content.decode()


def test_delete_selected_deletes_my_finished_jobs_and_skips_the_live_ones(alice_client, alice):
    done = make_job(alice, "done", video=b"mp4 bytes")
    failed = make_job(alice, "failed", status=Job.Status.FAILED)
    running = make_job(alice, "running", status=Job.Status.RUNNING)
    video_name = done.video.name

    response = alice_client.post(
        DELETE, {"job": [done.pk, failed.pk, running.pk], "confirmed": "1"}, follow=True
    )

    assert Job.objects.get(pk=done.pk).deleted_at is not None
    assert Job.objects.get(pk=failed.pk).deleted_at is not None
    assert Job.objects.get(pk=running.pk).deleted_at is None
    assert not default_storage.exists(video_name)
    assert messages_of(response) == [
        "Deleted 2 videos and their prompts. What they cost stays on record. Skipped 1 is "
        "still in progress, and a job can be deleted once it has finished."
    ]
    assert titles(response) == ["running"]


def test_the_confirmation_page_says_which_will_be_skipped_and_counts_them_after(
    alice_client, alice
):
    done = make_job(alice, "done")
    running = make_job(alice, "running", status=Job.Status.RUNNING)

    asked = alice_client.post(DELETE, {"job": [done.pk, running.pk]})
    ids = re.findall(r'name="job" value="([^"]+)"', asked.content.decode())
    confirmed = alice_client.post(DELETE, {"job": ids, "confirmed": "1"}, follow=True)

    assert "1 of the selected jobs is still in progress and will be skipped" in visible_text(asked)
    assert "Skipped 1 is still in progress" in messages_of(confirmed)[0]


def test_delete_selected_ignores_bobs_ids_and_changes_nothing_of_his(alice_client, alice, bob):
    mine = make_job(alice, "mine")
    bobs = make_job(bob, "bobs video", video=b"bob's mp4")
    before = Job.objects.filter(pk=bobs.pk).values().get()

    response = alice_client.post(DELETE, {"job": [mine.pk, bobs.pk], "confirmed": "1"}, follow=True)

    assert Job.objects.filter(pk=bobs.pk).values().get() == before
    assert default_storage.exists(bobs.video.name)
    assert Job.objects.get(pk=mine.pk).deleted_at is not None
    assert messages_of(response) == [
        "Deleted 1 video and its prompt. What it cost stays on record."
    ]


def test_only_bobs_ids_delete_nothing(alice_client, bob):
    bobs = make_job(bob, "bobs video")
    response = alice_client.post(DELETE, {"job": [bobs.pk], "confirmed": "1"}, follow=True)
    assert Job.objects.get(pk=bobs.pk).deleted_at is None
    assert messages_of(response) == ["Nothing was deleted: the selected videos are gone already."]


def test_staff_cannot_bulk_delete_someone_elses_jobs(admin_client, alice):
    job = make_job(alice, "alice's own")
    admin_client.post(DELETE, {"job": [job.pk], "confirmed": "1"})
    assert Job.objects.get(pk=job.pk).deleted_at is None


def test_delete_selected_with_only_live_jobs_deletes_nothing_and_says_why(alice_client, alice):
    running = make_job(alice, "running", status=Job.Status.RUNNING)
    response = alice_client.post(DELETE, {"job": [running.pk], "confirmed": "1"}, follow=True)
    assert Job.objects.get(pk=running.pk).deleted_at is None
    assert messages_of(response) == [
        "Nothing was deleted: 1 is still in progress, and a job can be deleted once it has finished."
    ]


def test_delete_selected_with_nothing_selected_says_so(alice_client):
    response = alice_client.post(DELETE, {"job": ["not-an-id"], "confirmed": "1"}, follow=True)
    assert messages_of(response) == ["Select at least one video to delete."]


def test_too_many_selected_is_refused(alice_client, alice):
    job = make_job(alice)
    ids = [job.pk] + [f"00000000-0000-0000-0000-{n:012d}" for n in range(MAX_SELECTION)]
    response = alice_client.post(DELETE, {"job": ids, "confirmed": "1"}, follow=True)
    assert messages_of(response) == [f"Select at most {MAX_SELECTION} videos at a time."]
    assert Job.objects.get(pk=job.pk).deleted_at is None


def test_a_bulk_action_returns_to_the_gallery_page_it_came_from(alice_client, alice):
    job = make_job(alice)
    back = f"{GALLERY}?q=storm&page=2"

    same_site = alice_client.post(DELETE, {"job": [job.pk], "confirmed": "1", "next": back})
    elsewhere = alice_client.post(DOWNLOAD, {"next": "https://evil.example/jobs/"})

    assert same_site.url == back
    assert elsewhere.url == GALLERY


@pytest.mark.parametrize("url", [DELETE, DOWNLOAD])
def test_bulk_actions_need_a_post(alice_client, url):
    assert alice_client.get(url).status_code == 405


# Download as .zip --------------------------------------------------------------------------------


def test_download_selected_streams_a_zip_of_my_videos_named_by_day_prompt_and_id(
    alice_client, alice
):
    storm = make_job(alice, "A lighthouse in a storm!", video=b"storm " * 50_000)
    image_only = make_job(alice, "", video=b"still " * 10)
    when = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    Job.objects.filter(pk__in=[storm.pk, image_only.pk]).update(created_at=when)

    response = alice_client.post(DOWNLOAD, {"job": [storm.pk, image_only.pk]})

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="videostudio-')
    archive = open_zip(response)
    assert archive.testzip() is None
    entries = {info.filename: info for info in archive.infolist()}
    storm_name = f"2026-11-24-a-lighthouse-in-a-storm-{storm.pk.hex[:8]}.mp4"
    image_name = f"2026-11-24-image-only-{image_only.pk.hex[:8]}.mp4"
    assert set(entries) == {storm_name, image_name}
    assert archive.read(storm_name) == b"storm " * 50_000
    assert archive.read(image_name) == b"still " * 10
    assert {info.compress_type for info in entries.values()} == {zipfile.ZIP_STORED}
    assert entries[storm_name].date_time == (2026, 11, 24, 9, 30, 0)


def test_a_generated_video_comes_out_of_the_zip_byte_for_byte(
    alice_client, alice, catalog, broker_url
):
    """broker_url: job_run enqueues the store step, and that message belongs in the test Redis
    database, and the worker a later test starts must not find the app bound to another."""
    from tests.helpers import run_job_now

    job = Job.objects.create(owner=alice, prompt="a real one", model="ir/test-video")
    run_job_now(job.pk)
    job.refresh_from_db()
    with job.video.open("rb") as stored:
        original = stored.read()

    archive = open_zip(alice_client.post(DOWNLOAD, {"job": [job.pk]}))

    [name] = archive.namelist()
    assert archive.read(name) == original and original[4:8] == b"ftyp"


def test_the_zip_leaves_out_bobs_videos_even_when_their_ids_are_posted(alice_client, alice, bob):
    mine = make_job(alice, "mine", video=b"mine")
    bobs = make_job(bob, "bobs secret", video=b"bob's video")

    archive = open_zip(alice_client.post(DOWNLOAD, {"job": [mine.pk, bobs.pk]}))

    assert [name.split("-")[3] for name in archive.namelist()] == ["mine"]
    assert b"bob's video" not in b"".join(archive.read(name) for name in archive.namelist())


def test_only_bobs_ids_get_no_zip(alice_client, bob):
    bobs = make_job(bob, "bobs secret", video=b"bob's video")
    response = alice_client.post(DOWNLOAD, {"job": [bobs.pk]}, follow=True)
    assert response["Content-Type"].startswith("text/html")
    assert messages_of(response) == ["None of the selected jobs has a video to download yet."]


def test_jobs_without_a_video_are_left_out_of_the_zip(alice_client, alice):
    with_video = make_job(alice, "has one", video=b"mp4")
    failed = make_job(alice, "failed", status=Job.Status.FAILED)
    running = make_job(alice, "running", status=Job.Status.RUNNING)
    missing = make_job(alice, "lost file", video=b"gone soon")
    default_storage.delete(missing.video.name)

    response = alice_client.post(
        DOWNLOAD, {"job": [with_video.pk, failed.pk, running.pk, missing.pk]}
    )

    assert [name.split("-")[3] for name in open_zip(response).namelist()] == ["has"]


def test_download_with_nothing_selected_says_so(alice_client):
    response = alice_client.post(DOWNLOAD, {}, follow=True)
    assert messages_of(response) == ["Select at least one video to download."]
    assert "Select at least one video to download." in visible_text(response)


def test_the_zip_streams_in_chunks_the_size_of_a_read_whatever_the_video_size(alice, tmp_path):
    """Memory holds one chunk at a time: no piece of the stream is much bigger than a read."""
    big = make_job(alice, "big", video=bytes(range(256)) * 16_384)  # 4 MiB
    chunks = list(zip_stream([big]))
    assert len(chunks) > 4 * 1024 * 1024 // ZIP_CHUNK_BYTES
    assert max(len(chunk) for chunk in chunks) <= ZIP_CHUNK_BYTES + 1024


@pytest.mark.skipif(shutil.which("unzip") is None, reason="needs Info-ZIP's unzip")
def test_the_zip_opens_with_the_everyday_unzip_tool(alice, tmp_path):
    job = make_job(alice, "for unzip", video=b"frames " * 1000)
    archive = tmp_path / "videos.zip"
    archive.write_bytes(b"".join(zip_stream([job])))

    checked = subprocess.run(["unzip", "-t", str(archive)], capture_output=True, text=True)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No errors detected" in checked.stdout


def test_entry_names_are_short_and_never_clash(alice):
    long = make_job(alice, "An extraordinarily long prompt about a lighthouse keeper's day off")
    unicode_only = make_job(alice, "灯台")
    taken = set()

    first = zip_entry_name(long, taken)
    again = zip_entry_name(long, taken)

    day = long.created_at.date().isoformat()
    assert first == f"{day}-an-extraordinarily-long-prompt-about-a-{long.pk.hex[:8]}.mp4"
    assert again == f"{day}-an-extraordinarily-long-prompt-about-a-{long.pk.hex}.mp4"
    assert zip_entry_name(unicode_only, taken).startswith(f"{day}-video-")
