"""Batches on real workers (the simulator over HTTP, a Celery worker on real Redis, PostgreSQL):
faults injected in some rows fail those rows alone; the rest complete; the failed ones are
retried as one, into the batch, after the person confirms, and charged only then."""

import io
import re
import zipfile

import pytest

from jobs import services
from jobs.models import Job, JobGroup
from jobs.services.batches import NothingToRetryError, batch_create_once, batch_retry
from tests.factories import KLING, TEST_MODEL, set_budget
from tests.helpers import visible_text, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("catalog")]


def start_batch(owner, prompts, model=TEST_MODEL, key="batch:one"):
    rows = [{"prompt": p, "model": model, "seconds": "auto", "size": "auto"} for p in prompts]
    batch, created = batch_create_once(
        owner=owner, team=None, rows=rows, response_format="url", key=key
    )
    assert created
    return batch


def all_finished(batch):
    return wait_for(
        lambda: not batch.jobs.filter(status__in=Job.LIVE).exists(),
        timeout=90,
        what="the batch's jobs to finish",
    )


def latest_statuses(batch) -> list[str]:
    jobs = batch.jobs.order_by("group_position", "created_at")
    latest = {job.group_position: job.status for job in jobs}
    return [latest[p] for p in sorted(latest)]


def test_faults_in_some_rows_fail_those_alone_and_their_retry_joins_the_batch(
    worker, simulator, alice, alice_client
):
    prompts = [f"row {n}: a lighthouse" for n in range(1, 7)]
    simulator.inject(
        {
            "kind": "http_error",
            "status": 502,
            "message": "Upstream failed",
            "match": {"prompt": "row 2:"},
        },
        {
            "kind": "error_after",
            "seconds": 0.2,
            "message": "Timed out upstream",
            "match": {"prompt": "row 5:"},
        },
    )
    batch = start_batch(alice, prompts)
    all_finished(batch)

    assert latest_statuses(batch) == [
        "succeeded",
        "failed",
        "succeeded",
        "succeeded",
        "failed",
        "succeeded",
    ]
    page = alice_client.get(f"/jobs/batches/{batch.pk}/")
    text = visible_text(page)
    assert re.search(r"4 done · 0 running · 0 queued · 2 failed of 6", text), text
    assert "Cost so far: $0.00" in text
    assert "Retry the 2 failed" in text and "Download the 4 finished (.zip)" in text

    confirm = alice_client.get(f"/jobs/batches/{batch.pk}/retry/")
    assert "Retry 2 failed videos?" in visible_text(confirm)
    assert "The failed tries were not charged." in visible_text(confirm)
    failed_ids = re.findall(r'name="job" value="([^"]+)"', confirm.content.decode())
    failed = batch.jobs.filter(status=Job.Status.FAILED).values_list("pk", flat=True)
    assert sorted(failed_ids) == sorted(str(pk) for pk in failed)

    response = alice_client.post(f"/jobs/batches/{batch.pk}/retry/", {"job": failed_ids})
    assert response.status_code == 302
    all_finished(batch)

    assert latest_statuses(batch) == ["succeeded"] * 6
    assert batch.jobs.count() == 8  # the two failed tries keep their own records
    assert set(Job.objects.filter(pk__in=failed_ids).values_list("status", flat=True)) == {"failed"}
    assert simulator.stats()["paid_calls"] == 6
    text = visible_text(alice_client.get(f"/jobs/batches/{batch.pk}/"))
    assert "6 done · 0 running · 0 queued · 0 failed of 6" in text and "try 2" in text

    archive = zipfile.ZipFile(
        io.BytesIO(
            b"".join(alice_client.get(f"/jobs/batches/{batch.pk}/download/").streaming_content)
        )
    )
    assert [name for name in archive.namelist() if name.endswith(".mp4")] == [
        f"00{n}-row-{n}-a-lighthouse.mp4" for n in range(1, 7)
    ]


def test_a_retry_pressed_twice_retries_each_row_once(simulator, alice, broker_url):
    batch = start_batch(alice, ["one", "two"])
    jobs = list(batch.jobs.order_by("group_position"))
    Job.objects.filter(pk__in=[j.pk for j in jobs]).update(status=Job.Status.FAILED, hold=0)

    retried = batch_retry(batch=batch, job_ids=[j.pk for j in jobs])
    with pytest.raises(NothingToRetryError):
        batch_retry(batch=batch, job_ids=[j.pk for j in jobs])

    assert sorted(job.group_position for job in retried) == [0, 1]
    assert batch.jobs.count() == 4 and JobGroup.objects.count() == 1


def test_the_retry_is_all_or_nothing_against_the_budget(simulator, alice, broker_url, settings):
    settings.JOB_SUBMITS_PER_MINUTE = 0
    batch = start_batch(alice, ["one", "two", "three"], model=KLING)
    Job.objects.filter(group=batch).update(status=Job.Status.FAILED, hold=0)
    set_budget(alice, "1.20")  # two Kling rows fit ($1.00), three ($1.50) do not

    with pytest.raises(services.OverBudgetError, match=r"these 3 videos could cost up to \$1\.50"):
        batch_retry(batch=batch, job_ids=list(batch.jobs.values_list("pk", flat=True)))

    assert batch.jobs.count() == 3


def test_a_batch_jobs_retry_from_its_own_page_joins_its_row(
    simulator, alice, alice_client, broker_url
):
    batch = start_batch(alice, ["one", "two"])
    second = batch.jobs.get(group_position=1)
    Job.objects.filter(pk=second.pk).update(status=Job.Status.FAILED, hold=0)

    response = alice_client.post(f"/jobs/{second.pk}/retry/")

    retry = batch.jobs.exclude(pk=second.pk).get(group_position=1)
    assert response.url == f"/jobs/{retry.pk}/"
    again = alice_client.post(f"/jobs/{second.pk}/retry/", follow=True)
    assert "Nothing was retried" in visible_text(again)
    assert batch.jobs.count() == 3
    assert "Row 2 of a batch" in visible_text(alice_client.get(f"/jobs/{retry.pk}/"))


def test_retrying_a_batch_counts_as_the_same_one_submit_against_the_active_limit(
    simulator, alice, broker_url, settings
):
    settings.JOB_ACTIVE_LIMIT = 1
    batch = start_batch(alice, ["one", "two"])
    first = batch.jobs.get(group_position=0)
    Job.objects.filter(pk=first.pk).update(status=Job.Status.FAILED, hold=0)

    with pytest.raises(services.TooManyActiveJobsError):  # the batch's second row is queued
        services.job_create(
            owner=alice,
            prompt="alone",
            model=TEST_MODEL,
            size="auto",
            seconds="auto",
            response_format="url",
        )
    retried = batch_retry(batch=batch, job_ids=[first.pk])

    assert len(retried) == 1 and retried[0].group_id == batch.pk
