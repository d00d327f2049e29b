"""The job page tells people where they stand: their place in the queue, how long it has run
against the usual wait, and, once done, the player and what to do next."""

from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertInHTML

from jobs.models import Job
from tests.media import image_bytes

MODEL = "ir/test-video"


def queued(owner, prompt, *, ago: int) -> Job:
    """A queued job created `ago` seconds ago: the queue's order is created_at's, so tests set it
    rather than trusting two inserts to land on different microseconds."""
    job = Job.objects.create(owner=owner, prompt=prompt, model=MODEL)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=ago))
    return Job.objects.get(pk=job.pk)


def running(owner, *, for_seconds: int, model: str = MODEL) -> Job:
    return Job.objects.create(
        owner=owner,
        prompt="a fox in the snow",
        model=model,
        status=Job.Status.RUNNING,
        attempt=1,
        started_at=timezone.now() - timedelta(seconds=for_seconds),
    )


def succeeded_in(owner, seconds: int, *, model: str = MODEL) -> Job:
    """A past success that took `seconds` from start to stored video: the wait history."""
    finished = timezone.now() - timedelta(minutes=5)
    return Job.objects.create(
        owner=owner,
        model=model,
        status=Job.Status.SUCCEEDED,
        started_at=finished - timedelta(seconds=seconds),
        finished_at=finished,
        cost=0,
    )


def finished(owner, status, **fields) -> Job:
    return Job.objects.create(
        owner=owner, prompt="a paper boat on a river", model=MODEL, status=status, **fields
    )


def status_fragment(client, job):
    return client.get(reverse("jobs:status", args=[job.pk]))


def page(client, job) -> str:
    return client.get(reverse("jobs:detail", args=[job.pk])).content.decode()


class Elements(HTMLParser):
    """Every start tag's attributes, by tag name, as the browser will see them (entities
    decoded), so a test can read an href or see that an attribute is missing."""

    def __init__(self, html: str):
        super().__init__()
        self.found: dict[str, list[dict]] = {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.found.setdefault(tag, []).append(dict(attrs))

    def all(self, tag) -> list[dict]:
        return self.found.get(tag, [])

    def one(self, tag) -> dict:
        (element,) = self.all(tag)
        return element


def link_hrefs(html: str) -> set[str]:
    return {a.get("href") for a in Elements(html).all("a")}


# Queued ----------------------------------------------------------------------------------------


def test_a_queued_job_says_its_place_in_my_queue_and_the_studios(alice_client, alice, bob):
    queued(alice, "first of mine", ago=50)
    queued(bob, "bob's, ahead of mine", ago=40)
    queued(alice, "second of mine", ago=30)
    queued(bob, "bob's, behind mine", ago=5)
    running(alice, for_seconds=10)  # running jobs are not in the queue any more
    mine = queued(alice, "third of mine", ago=20)

    html = page(alice_client, mine)

    assert "3rd in your queue · 4th in the studio's" in html
    assert "Cancel" in html


def test_the_place_in_the_queue_moves_up_with_the_poll(alice_client, alice, bob):
    ahead = queued(bob, "ahead", ago=30)
    mine = queued(alice, "mine", ago=10)
    assert (
        "1st in your queue · 2nd in the studio's"
        in status_fragment(alice_client, mine).content.decode()
    )

    Job.objects.filter(pk=ahead.pk).update(status=Job.Status.RUNNING, started_at=timezone.now())

    response = status_fragment(alice_client, mine)
    assert response.status_code == 200
    assert "1st in your queue · 1st in the studio's" in response.content.decode()


def test_a_job_waiting_to_retry_says_so_instead_of_a_place(alice_client, alice):
    job = queued(alice, "rate limited", ago=10)
    Job.objects.filter(pk=job.pk).update(
        not_before=timezone.now() + timedelta(seconds=30), error="too many requests"
    )

    html = status_fragment(alice_client, job).content.decode()

    assert "Waiting to retry" in html and "in your queue" not in html


# Running ---------------------------------------------------------------------------------------


def test_a_running_job_shows_elapsed_time_and_progress_toward_the_usual_wait(alice_client, alice):
    for seconds in (60, 70, 80):  # the median is 70 s
        succeeded_in(alice, seconds)
    job = running(alice, for_seconds=20)

    html = page(alice_client, job)

    assert "Generating…" in html and "20 s" in html
    assert "Usually ready in about 1 min 10 s; this is an estimate, not a promise." in html
    bar = Elements(html).one("progress")
    assert (bar["max"], bar["value"]) == ("70", "20")
    report = next(div for div in Elements(html).all("div") if "data-started-at" in div)
    assert report["data-typical-wait"] == "70"
    assert report["data-started-at"] == job.started_at.isoformat(timespec="milliseconds")


def test_past_the_usual_wait_the_bar_is_indeterminate_and_the_text_says_longer_than_usual(
    alice_client, alice
):
    succeeded_in(alice, 30)
    job = running(alice, for_seconds=95)

    html = status_fragment(alice_client, job).content.decode()

    assert "1 min 35 s" in html
    bar = Elements(html).one("progress")
    assert "value" not in bar  # indeterminate: no claim about how much is left
    spans = {span.get("data-when"): span for span in Elements(html).all("span")}
    assert "hidden" in spans["usual"] and "hidden" not in spans["longer"]
    assert "Taking longer than usual" in html


def test_without_history_a_running_job_gives_the_honest_range_and_no_bar(alice_client, alice):
    succeeded_in(alice, 40, model="some/other-model")  # another model's history doesn't count
    job = running(alice, for_seconds=5)

    html = status_fragment(alice_client, job).content.decode()

    assert "Video models usually take from 20 seconds to a few minutes." in html
    assert "<progress" not in html and "Usually ready" not in html


def test_a_live_job_offers_the_notification_and_a_finished_one_does_not(alice_client, alice):
    live = page(alice_client, running(alice, for_seconds=5))
    done = page(alice_client, finished(alice, Job.Status.SUCCEEDED, cost=0))

    assert "Notify me when it's ready" in live
    assert "Notify me" not in done


# Done, failed, canceled ------------------------------------------------------------------------


@pytest.fixture
def done_job(alice):
    job = finished(alice, Job.Status.SUCCEEDED, cost=Decimal("0.25"), latency_ms=12_345)
    job.video.save("video.mp4", ContentFile(b"\0" * 64))
    return job


def test_a_finished_job_shows_the_player_cost_latency_and_download(alice_client, done_job):
    html = page(alice_client, done_job)

    video = Elements(html).one("video")
    assert video["src"] == reverse("jobs:video", args=[done_job.pk])
    assert video["preload"] == "metadata" and "controls" in video
    assert "poster" not in video  # no poster yet: no attribute that would 404
    assertInHTML("<span>Cost: <strong>$0.25</strong></span>", html)
    assertInHTML("<span>Provider latency: <strong>12.3 s</strong></span>", html)
    assert reverse("jobs:video", args=[done_job.pk]) + "?download=1" in link_hrefs(html)


def test_the_player_shows_the_poster_when_the_job_has_one(alice_client, done_job):
    done_job.poster.save("poster.jpg", ContentFile(image_bytes("JPEG")))

    html = page(alice_client, done_job)

    poster_url = reverse("jobs:poster", args=[done_job.pk])
    assert Elements(html).one("video")["poster"] == poster_url
    poster = alice_client.get(poster_url)
    assert poster.status_code == 200 and poster["Content-Type"] == "image/jpeg"


def test_a_finished_job_links_to_generate_again_edit_and_use_as_input(alice_client, done_job):
    html = page(alice_client, done_job)

    create, pk = reverse("jobs:create"), done_job.pk
    assert {f"{create}?from={pk}", f"{create}?from={pk}&edit=1", f"{create}?frame={pk}"} <= (
        link_hrefs(html)
    )
    assertInHTML(f'<a href="{create}?from={pk}&amp;edit=1">Edit &amp; re-run</a>', html)
    assert "Retry" not in html


@pytest.mark.parametrize("status", [Job.Status.FAILED, Job.Status.CANCELED])
def test_a_failed_or_canceled_job_can_be_run_again_but_has_no_frame_to_use(
    alice_client, alice, status
):
    job = finished(alice, status, error="ImageRouter refused this request: prompt rejected.")

    html = page(alice_client, job)

    create = reverse("jobs:create")
    hrefs = link_hrefs(html)
    assert {f"{create}?from={job.pk}", f"{create}?from={job.pk}&edit=1"} <= hrefs
    assert f"{create}?frame={job.pk}" not in hrefs
    assert (reverse("jobs:retry", args=[job.pk]) in hrefs) == (status == Job.Status.FAILED)
    assert reverse("jobs:delete", args=[job.pk]) in hrefs


# The polling contract --------------------------------------------------------------------------


@pytest.mark.parametrize("status", sorted(Job.TERMINAL))
def test_a_terminal_fragment_answers_286_and_marks_itself_terminal(alice_client, alice, status):
    job = finished(alice, status)

    response = status_fragment(alice_client, job)

    html = response.content.decode()
    section = Elements(html).one("section")
    assert response.status_code == 286
    assert "hx-trigger" not in section and "data-poll" not in section
    assert "data-terminal" in section and section["data-outcome"] == status


@pytest.mark.parametrize("status", sorted(Job.LIVE))
def test_a_live_fragment_answers_200_and_keeps_polling(alice_client, alice, status):
    job = finished(alice, status, started_at=timezone.now())

    response = status_fragment(alice_client, job)

    section = Elements(response.content.decode()).one("section")
    assert response.status_code == 200
    assert section["hx-trigger"] == "every 2s" and "data-poll" in section
    assert "data-terminal" not in section


def test_the_poll_costs_two_counts_while_queued_one_read_while_running_and_nothing_after(
    alice_client, alice
):
    def queries(job) -> int:
        with CaptureQueriesContext(connection) as captured:
            status_fragment(alice_client, job)
        return len(captured)

    baseline = queries(finished(alice, Job.Status.SUCCEEDED))  # session, user, the job

    assert queries(queued(alice, "waiting", ago=1)) == baseline + 2
    assert queries(running(alice, for_seconds=1)) == baseline + 1
    assert queries(finished(alice, Job.Status.STORING)) == baseline


@pytest.mark.parametrize("name", ["jobs:detail", "jobs:status"])
@pytest.mark.parametrize("status", [Job.Status.QUEUED, Job.Status.RUNNING, Job.Status.SUCCEEDED])
def test_bob_gets_404_on_alices_job_page_in_every_state(client, alice, bob, name, status):
    job = finished(alice, status, started_at=timezone.now())
    client.force_login(bob)

    assert client.get(reverse(name, args=[job.pk])).status_code == 404
