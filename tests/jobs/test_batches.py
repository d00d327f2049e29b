"""Batches through their pages: pasted prompts or a CSV file, the preview (each row's estimate or
the reason it would be refused, the total, what refuses the whole), Start (all or none, once per
press), who sees a batch, its progress poll, and its zip."""

import io
import re
import zipfile
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs import services
from jobs.models import Job, JobGroup
from jobs.services.batches import batch_create_once
from tests.factories import KLING, SORA, TEST_MODEL, VEO, set_budget, team_with
from tests.helpers import at_once, visible_text

pytestmark = pytest.mark.usefixtures("catalog", "broker_url")

NEW = "/jobs/batches/new/"
START = "/jobs/batches/start/"


def preview_form(**fields) -> dict:
    return {
        "model": TEST_MODEL,
        "seconds": "auto",
        "size": "auto",
        "response_format": "url",
        "prompts": "",
        **fields,
    }


def csv_file(text, name="batch.csv", encoding="utf-8") -> SimpleUploadedFile:
    data = text if isinstance(text, bytes) else text.encode(encoding)
    return SimpleUploadedFile(name, data, content_type="text/csv")


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden {name} on the page"
    import html as html_module

    return html_module.unescape(match[1])


def start_form(html: str) -> dict:
    """What the preview's Start button posts."""
    return {
        name: hidden(html, name)
        for name in ("submit_token", "charge_to", "response_format", "rows")
    }


# --- The preview -----------------------------------------------------------------------------------


def test_pasted_prompts_preview_each_rows_estimate_and_the_total_and_create_nothing(alice_client):
    prompts = "a fox in snow\n\n  a heron on a pier  \na lighthouse at dusk\n"

    response = alice_client.post(NEW, preview_form(model=KLING, seconds="10", prompts=prompts))

    text = visible_text(response)
    assert response.status_code == 200
    assert "3 prompts, up to $1.50 in all." in text
    assert text.count("$0.50") >= 3
    assert "a heron on a pier" in text
    assert "Start 3 videos" in text
    assert not Job.objects.exists() and not JobGroup.objects.exists()


def test_a_csv_previews_its_own_models_seconds_and_sizes_and_says_why_rows_are_refused(
    alice_client,
):
    rows = (
        "prompt,model,seconds,size\n"
        f"a fox in snow,{VEO},8,1280x720\n"
        f'"a heron, on a pier",{KLING},,\n'
        f"a boat,{VEO},7,\n"
        f"a cat,{KLING},5,640x480\n"
        "a dog,acme/nope,,\n"
        f",{VEO},,\n"
        f"{'x' * 10_001},{VEO},,\n"
    )

    response = alice_client.post(NEW, preview_form(csv_file=csv_file(rows)))

    text = visible_text(response)
    assert "7 prompts" in text
    assert "This batch cannot start" in text and "5 rows would be refused" in text
    assert "a heron, on a pier" in text
    assert f"{VEO} makes videos of 4, 6 or 8 seconds, not 7." in text
    assert f"{KLING} makes these sizes: 1280x720, 720x1280 or 960x960, not 640x480." in text
    assert "“acme/nope” is not a model you can choose here." in text
    assert "This row has no prompt." in text
    assert "This prompt is 10,001 characters long; the most ImageRouter takes is 10,000." in text
    assert "Start " not in text
    assert not Job.objects.exists()


def test_a_row_over_what_a_budget_level_has_left_is_refused_and_so_is_a_total_over_it(
    alice, alice_client
):
    set_budget(alice, "1.00")

    response = alice_client.post(
        NEW, preview_form(model=VEO, prompts="one\ntwo\nthree"), follow=True
    )
    text = visible_text(response)
    assert (
        "Your personal budget has $1.00 left this month; these 3 videos could cost up to $1.80 "
        "together, $0.80 more than that. The first 1 of them would fit."
    ) in text
    assert "Start " not in text

    response = alice_client.post(NEW, preview_form(model=SORA, prompts="one"))
    assert (
        "Refused: Your personal budget has $1.00 left this month; this video could cost up to "
        "$1.20."
    ) in visible_text(response)


def test_a_model_the_team_may_not_use_is_refused_on_its_row_naming_the_team(alice, client):
    design = team_with("Design", members=[alice], models=[TEST_MODEL, VEO], default_for=[alice])
    client.force_login(alice)

    response = client.post(
        NEW,
        preview_form(
            charge_to=str(design.pk), csv_file=csv_file(f"prompt,model\na,{VEO}\nb,{KLING}\n")
        ),
    )

    text = visible_text(response)
    assert "1 row would be refused" in text
    assert str(services.ModelUnavailableError(model=KLING, team=design)) in text


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (b"", "This file is empty."),
        (b"   \n\n", "This file is empty."),
        (b"prompt,model\n", "This file has only its header row."),
        ("prompt\nun caf\u00e9 au lait\n".encode("latin-1"), "This file is not UTF-8 text"),
        (b'prompt\n"an open quote\n', "cannot be read as CSV"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "it holds binary data"),
        (b"prompt,colour\na,red\n", "“colour” is not one of them"),
        (b"model,seconds\nx,5\n", "none is “prompt”"),
        (b"prompt,prompt\na,b\n", "names the column “prompt” twice"),
        (b"prompt\na fox, in snow\n", "Line 2 of this file has 2 cells, more than its 1 column"),
        ("\n".join(f"prompt {n}" for n in range(101)).encode(), "This file has 101 prompts"),
        (b"x" * (4 * 1024 * 1024 + 1), "This file is larger than 4 MB"),
    ],
    ids=[
        "empty",
        "blank",
        "header-only",
        "latin-1",
        "open-quote",
        "binary",
        "unknown-column",
        "no-prompt-column",
        "column-twice",
        "unquoted-comma",
        "101-rows",
        "huge",
    ],
)
def test_a_bad_file_gets_a_clear_message_on_its_field_and_nothing_is_made(
    alice_client, upload, message
):
    response = alice_client.post(NEW, preview_form(csv_file=csv_file(upload)))

    assert response.status_code == 200
    assert message in visible_text(response)
    assert "Preview" not in visible_text(response).split("Make a batch")[0]
    assert not Job.objects.exists()


def test_a_utf16_file_from_excel_and_a_semicolon_file_are_read(alice_client):
    utf16 = csv_file("prompt\tseconds\r\nun café\t5\r\n".encode("utf-16"))
    response = alice_client.post(NEW, preview_form(csv_file=utf16))
    assert "1 prompt, up to $0.00 in all." in visible_text(response)
    assert "un café" in visible_text(response)

    semicolons = csv_file(f"prompt;model\na fox, running;{KLING}\n".encode("utf-8-sig"))
    response = alice_client.post(NEW, preview_form(csv_file=semicolons))
    assert "1 prompt, up to $0.50 in all." in visible_text(response)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"prompts": ""}, "Paste at least one prompt, or choose a CSV file."),
        ({"prompts": "\n".join("p" for _ in range(101))}, "You pasted 101 prompts"),
        (
            {"prompts": "a", "csv_file": csv_file("prompt\nb\n")},
            "Paste prompts or choose a CSV file, not both",
        ),
        ({"model": "acme/nope", "prompts": "a"}, "“acme/nope” is not a model you can choose"),
    ],
    ids=["nothing", "101-lines", "both", "unknown-model"],
)
def test_bad_pasted_input_gets_a_clear_message(alice_client, fields, message):
    response = alice_client.post(NEW, preview_form(**fields))

    assert response.status_code == 200
    assert message in visible_text(response)
    assert not Job.objects.exists()


# --- Start ---------------------------------------------------------------------------------------


def test_start_makes_the_previewed_batch_whole_with_each_rows_hold(alice, alice_client):
    rows = f"prompt,model,seconds\na fox,{KLING},10\na heron,{VEO},\na boat,,\n"
    preview = alice_client.post(NEW, preview_form(csv_file=csv_file(rows))).content.decode()

    response = alice_client.post(START, start_form(preview))

    batch = JobGroup.objects.get()
    assert response.status_code == 302 and response.url == f"/jobs/batches/{batch.pk}/"
    assert batch.kind == JobGroup.Kind.BATCH and batch.owner == alice and batch.team is None
    jobs = list(batch.jobs.order_by("group_position"))
    assert [(j.prompt, j.model, j.seconds, j.hold) for j in jobs] == [
        ("a fox", KLING, "10", Decimal("0.50")),
        ("a heron", VEO, "auto", Decimal("0.60")),
        ("a boat", TEST_MODEL, "auto", Decimal(0)),
    ]
    assert {job.status for job in jobs} == {Job.Status.QUEUED}


def test_pressing_start_twice_starts_one_batch(alice_client):
    preview = alice_client.post(NEW, preview_form(prompts="one\ntwo")).content.decode()

    alice_client.post(START, start_form(preview))
    again = alice_client.post(START, start_form(preview), follow=True)

    assert JobGroup.objects.count() == 1 and Job.objects.count() == 2
    assert "You had already pressed Start for this batch" in visible_text(again)


def test_a_budget_spent_between_preview_and_start_refuses_the_whole_batch(alice, alice_client):
    set_budget(alice, "2.00")
    preview = alice_client.post(NEW, preview_form(model=VEO, prompts="a\nb\nc")).content.decode()
    services.job_create(
        owner=alice,
        prompt="meanwhile",
        model=VEO,
        size="auto",
        seconds="auto",
        response_format="url",
    )

    response = alice_client.post(START, start_form(preview))

    text = visible_text(response)
    assert "This batch cannot start, and nothing was started" in text
    assert "Your personal budget has $1.40 left this month; these 3 videos" in text
    assert not JobGroup.objects.exists() and Job.objects.count() == 1


def test_rows_edited_in_the_page_are_checked_again_at_start(alice_client):
    preview = alice_client.post(NEW, preview_form(prompts="one")).content.decode()
    tampered = start_form(preview)
    tampered["rows"] = tampered["rows"].replace(TEST_MODEL, "acme/nope")

    response = alice_client.post(START, tampered)

    assert "“acme/nope” is not a model you can choose here." in visible_text(response)
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "rows", ["not json", "[]", '[{"prompt": "a"}]', "[" + ",".join(["{}"] * 101) + "]"]
)
def test_a_start_whose_rows_cannot_be_read_says_so(alice_client, rows):
    response = alice_client.post(
        START, {"rows": rows, "charge_to": "personal", "response_format": "url"}, follow=True
    )

    assert "This batch could not be read. Preview it again" in visible_text(response)
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_racing_batches_on_one_team_budget_are_each_accepted_or_refused_whole(
    django_user_model, settings
):
    """Six members start a 3-row Veo batch ($1.80) at once on a $4.00 team budget: two fit,
    each whole; the others are refused and leave no job."""
    settings.JOB_SUBMITS_PER_MINUTE = settings.JOB_ACTIVE_LIMIT = 0
    members = [django_user_model.objects.create_user(f"member{n}") for n in range(6)]
    design = team_with("Design", members=members, limit="4.00")
    rows = [{"prompt": f"row {n}", "model": VEO, "seconds": "auto", "size": "auto"} for n in "abc"]

    def start(n):
        batch, _ = batch_create_once(
            owner=members[n], team=design, rows=rows, response_format="url", key=f"batch:{n}"
        )
        return batch

    accepted, refused, errors = at_once(6, start, refusal=services.OverBudgetError)

    assert errors == []
    assert len(accepted) == 2 and len(refused) == 4
    assert JobGroup.objects.count() == 2
    for batch in JobGroup.objects.all():
        assert batch.jobs.count() == 3
    assert sum(job.hold for job in Job.objects.all()) == Decimal("3.60")


# --- Who sees a batch ------------------------------------------------------------------------------


def make_batch(owner, prompts=("one", "two"), team=None):
    rows = [{"prompt": p, "model": TEST_MODEL, "seconds": "auto", "size": "auto"} for p in prompts]
    batch, _ = batch_create_once(
        owner=owner, team=team, rows=rows, response_format="url", key=f"batch:{prompts}"
    )
    return batch


def test_bob_gets_404_on_alices_batch_its_retry_and_its_zip(alice, bob, client):
    batch = make_batch(alice)
    client.force_login(bob)

    for suffix in ("", "?part=progress", "retry/", "download/"):
        assert client.get(f"/jobs/batches/{batch.pk}/{suffix}").status_code == 404
    assert client.post(f"/jobs/batches/{batch.pk}/retry/").status_code == 404


def test_a_teammate_sees_a_team_batch_but_may_not_retry_it(alice, bob, client):
    design = team_with("Design", members=[alice, bob])
    batch = make_batch(alice, team=design)
    client.force_login(bob)

    page = client.get(f"/jobs/batches/{batch.pk}/")

    assert page.status_code == 200 and "A batch of 2 by alice" in visible_text(page)
    assert client.get(f"/jobs/batches/{batch.pk}/retry/").status_code == 404


# --- The progress poll and the zip -----------------------------------------------------------------


def test_the_progress_poll_answers_204_while_nothing_changed_and_286_once_finished(
    alice, alice_client
):
    batch = make_batch(alice)
    page = alice_client.get(f"/jobs/batches/{batch.pk}/").content.decode()
    poll = re.search(r'hx-get="([^"]+)"', page)[1].replace("&amp;", "&")

    assert alice_client.get(poll).status_code == 204

    first = batch.jobs.order_by("group_position").first()
    Job.objects.filter(pk=first.pk).update(status=Job.Status.RUNNING, attempt=1)
    changed = alice_client.get(poll)
    assert changed.status_code == 200
    assert re.search(r"1\s*</strong> running", changed.content.decode())

    for job in batch.jobs.all():
        services.job_cancel(job=job)
    Job.objects.filter(pk=first.pk).update(status=Job.Status.FAILED, error="boom")
    done = alice_client.get(poll)
    assert done.status_code == 286
    assert "Retry the 1 failed" in visible_text(done)


def test_the_zip_names_each_video_by_its_row_and_lists_every_row(alice, alice_client):
    batch = make_batch(alice, prompts=("a fox in snow", "=HYPERLINK(1)", "a heron"))
    jobs = list(batch.jobs.order_by("group_position"))
    for job in jobs[:2]:
        job.video.save("v.mp4", io.BytesIO(b"video of " + job.prompt.encode()), save=False)
        Job.objects.filter(pk=job.pk).update(
            video=job.video.name, status=Job.Status.SUCCEEDED, cost=0
        )

    response = alice_client.get(f"/jobs/batches/{batch.pk}/download/")

    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == ["001-a-fox-in-snow.mp4", "002-hyperlink1.mp4", "batch.csv"]
    assert archive.read("001-a-fox-in-snow.mp4") == b"video of a fox in snow"
    manifest = archive.read("batch.csv").decode().splitlines()
    assert manifest[0] == "row,prompt,model,seconds,size,status,cost,file"
    assert manifest[2].startswith("2,'=HYPERLINK(1),")
    assert manifest[3] == f"3,a heron,{TEST_MODEL},auto,auto,queued,,"
