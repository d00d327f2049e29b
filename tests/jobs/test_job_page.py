"""The job page tells people where they stand: their place in the queue, how long it has run
against the usual wait, and, once done, the player and what to do next."""

from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertInHTML

from jobs.models import Job
from tests.factories import new_job, queued, running, succeeded_in
from tests.helpers import Elements, live_poll, page, poll_query, poll_url, status_fragment
from tests.media import image_bytes


def queue_place(client, job):
    return client.get(reverse("jobs:detail", args=[job.pk]), {"part": "queue"})


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


def test_the_place_in_the_queue_moves_up_with_its_own_slower_poll(alice_client, alice, bob):
    ahead = queued(bob, "ahead", ago=30)
    mine = queued(alice, "mine", ago=10)
    line = next(p for p in Elements(page(alice_client, mine)).all("p") if "hx-get" in p)
    assert line["hx-get"] == reverse("jobs:detail", args=[mine.pk]) + "?part=queue"
    assert line["hx-trigger"] == "every 10s" and "data-poll" in line

    response = queue_place(alice_client, mine)
    assert response.status_code == 200
    assert "1st in your queue · 2nd in the studio's" in response.content.decode()
    assert "<section" not in response.content.decode()  # the place alone, not the status

    Job.objects.filter(pk=ahead.pk).update(status=Job.Status.RUNNING, started_at=timezone.now())

    assert "1st in your queue · 1st in the studio's" in (
        queue_place(alice_client, mine).content.decode()
    )


def test_the_queue_place_costs_the_user_the_job_and_two_counts(
    alice_client, alice, django_assert_num_queries
):
    mine = queued(alice, "mine", ago=10)
    queue_place(alice_client, mine)

    with django_assert_num_queries(5):  # the session, the user, the job, two COUNTs
        queue_place(alice_client, mine)


@pytest.mark.parametrize("state", ["running", "waiting to retry", "canceled"])
def test_the_queue_place_poll_says_nothing_once_the_job_has_left_the_queue(
    alice_client, alice, state
):
    job = queued(alice, "mine", ago=10)
    changes = {
        "running": {"status": Job.Status.RUNNING, "started_at": timezone.now()},
        "waiting to retry": {"not_before": timezone.now() + timedelta(seconds=30)},
        "canceled": {"status": Job.Status.CANCELED},
    }[state]
    Job.objects.filter(pk=job.pk).update(**changes)

    response = queue_place(alice_client, job)

    # 204: htmx keeps the line as it is until the status poll brings the news.
    assert (response.status_code, response.content) == (204, b"")


def test_a_queued_fragment_brought_by_the_status_poll_asks_for_its_place_at_once(
    alice_client, alice
):
    job = queued(alice, "mine", ago=10)

    html = status_fragment(alice_client, job).content.decode()  # no version: rendered

    line = next(p for p in Elements(html).all("p") if "hx-get" in p)
    assert line["hx-trigger"] == "load, every 10s"
    assert "in your queue" not in html


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

    html = page(alice_client, job)

    assert "1 min 35 s" in html
    bar = Elements(html).one("progress")
    assert "value" not in bar  # indeterminate: no claim about how much is left
    spans = {span.get("data-when"): span for span in Elements(html).all("span")}
    assert "hidden" in spans["usual"] and "hidden" not in spans["longer"]
    assert "Taking longer than usual" in html


def test_the_page_hands_the_typical_wait_to_the_poll_which_shows_it_without_the_history(
    alice_client, alice, django_assert_num_queries
):
    for seconds in (60, 70, 80):  # the median is 70 s
        succeeded_in(alice, seconds)
    job = queued(alice, "soon running", ago=5)
    query = poll_query(page(alice_client, job))
    assert (query["v"], query["wait"]) == ("queued.0", "70")  # read once, with the page
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, attempt=1, started_at=timezone.now() - timedelta(seconds=20)
    )

    with django_assert_num_queries(4):  # the unchanged check, then the session, user and job
        response = status_fragment(alice_client, job, **query)

    html = response.content.decode()
    assert response.status_code == 200 and "Generating…" in html
    assert "Usually ready in about 1 min 10 s; this is an estimate, not a promise." in html
    bar = Elements(html).one("progress")
    assert (bar["max"], bar["value"]) == ("70", "20")
    assert poll_query(html) == {**query, "v": "running.1"}  # hands the wait on, and the pass


@pytest.mark.parametrize("wait", ["", "0", "-5", "abc", "1e3", "٣", "86401", "10; drop"])
def test_a_poll_ignores_a_typical_wait_that_is_not_a_sensible_whole_number(
    alice_client, alice, wait
):
    job = running(alice, for_seconds=5)

    html = status_fragment(alice_client, job, wait=wait).content.decode()

    assert "Video models usually take from 20 seconds to a few minutes." in html
    assert "<progress" not in html


def test_without_history_a_running_job_gives_the_honest_range_and_no_bar(alice_client, alice):
    succeeded_in(alice, 40, model="some/other-model")  # another model's history doesn't count
    job = running(alice, for_seconds=5)

    html = page(alice_client, job)

    assert "Video models usually take from 20 seconds to a few minutes." in html
    assert "<progress" not in html and "Usually ready" not in html
    assert "wait" not in poll_query(html)  # no wait to hand on


def test_a_live_job_offers_the_notification_and_a_finished_one_does_not(alice_client, alice):
    live = page(alice_client, running(alice, for_seconds=5))
    done = page(alice_client, new_job(alice, status=Job.Status.SUCCEEDED, cost=0))

    assert "Notify me when it's ready" in live
    assert "Notify me" not in done


# Done, failed, canceled ------------------------------------------------------------------------


@pytest.fixture
def done_job(alice):
    job = new_job(alice, status=Job.Status.SUCCEEDED, cost=Decimal("0.25"), latency_ms=12_345)
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
    job = new_job(alice, status=status, error="ImageRouter refused this request: prompt rejected.")

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
    job = new_job(alice, status=status)

    response = status_fragment(alice_client, job)

    html = response.content.decode()
    section = Elements(html).one("section")
    assert response.status_code == 286
    assert "hx-trigger" not in section and "data-poll" not in section
    assert "data-terminal" in section and section["data-outcome"] == status


@pytest.mark.parametrize("status", sorted(Job.LIVE))
def test_a_live_fragment_answers_200_and_keeps_polling_with_its_version(
    alice_client, alice, status
):
    job = new_job(alice, status=status, attempt=1, started_at=timezone.now())

    response = status_fragment(alice_client, job)

    section = Elements(response.content.decode()).one("section")
    assert response.status_code == 200
    assert section["hx-trigger"] == "every 2s" and "data-poll" in section
    assert "data-terminal" not in section
    url = urlsplit(section["hx-get"])
    assert url.path == reverse("jobs:status", args=[job.pk])
    assert dict(parse_qsl(url.query)) == {
        "v": f"{status}.1",
        "p": poll_query(page(alice_client, job))["p"],
    }


@pytest.mark.parametrize("status", sorted(Job.LIVE))
def test_an_unchanged_poll_answers_204_with_no_body_for_one_query(
    alice_client, alice, status, django_assert_num_queries
):
    job = new_job(alice, status=status, attempt=1, started_at=timezone.now())
    query = poll_query(page(alice_client, job))

    with django_assert_num_queries(1):  # the job and the user together, by primary key
        response = status_fragment(alice_client, job, **query)

    assert (response.status_code, response.content) == (204, b"")


def test_each_transition_gets_a_new_version_and_a_fresh_fragment(alice_client, alice):
    job = queued(alice, "going places", ago=5)
    html = page(alice_client, job)
    steps = [
        ({"status": Job.Status.RUNNING, "attempt": 1, "started_at": timezone.now()}, "running.1"),
        # The provider was busy: back to the queue, to wait before the second try.
        ({"status": Job.Status.QUEUED, "not_before": timezone.now()}, "queued.1"),
        ({"status": Job.Status.RUNNING, "attempt": 2}, "running.2"),
        ({"status": Job.Status.STORING}, "storing.2"),
    ]
    for changes, version in steps:
        assert status_fragment(alice_client, job, **poll_query(html)).status_code == 204
        Job.objects.filter(pk=job.pk).update(**changes)

        response = status_fragment(alice_client, job, **poll_query(html))

        assert response.status_code == 200
        html = response.content.decode()
        assert poll_query(html)["v"] == version

    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, cost=0)
    response = status_fragment(alice_client, job, **poll_query(html))
    assert response.status_code == 286 and "data-terminal" in response.content.decode()


def test_the_poll_costs_one_query_unchanged_four_on_a_change_and_no_render_in_between(
    alice_client, alice, django_assert_num_queries
):
    """Unchanged: the fast path's one query. Changed or finished (a few times in a job's life):
    that query, then the session's, the user's and the job's. No version (an old page): the
    session, the user and the job. (Sessions are in the database, so they work while Redis is
    away.)"""
    job = running(alice, for_seconds=1)
    query = live_poll(alice_client, job)

    with django_assert_num_queries(1):
        assert status_fragment(alice_client, job, **query).status_code == 204
    with django_assert_num_queries(4):
        assert status_fragment(alice_client, job, **{**query, "v": "queued.0"}).status_code == 200
    with django_assert_num_queries(3):
        assert status_fragment(alice_client, job).status_code == 200
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, cost=0)
    with django_assert_num_queries(4):
        assert status_fragment(alice_client, job, **query).status_code == 286


@pytest.mark.parametrize("status", sorted(Job.TERMINAL))
def test_a_finished_job_answers_286_whatever_version_the_poll_claims(alice_client, alice, status):
    job = new_job(alice, status=status, attempt=1)

    for version in (f"{status}.1", "running.1", ""):
        response = status_fragment(alice_client, job, v=version)
        assert response.status_code == 286
        assert "data-terminal" in response.content.decode()


# Who may have the 204 -------------------------------------------------------------------------


def test_bob_with_the_right_version_and_alices_pass_still_gets_404(alice_client, alice, bob):
    job = running(alice, for_seconds=1)
    alices = live_poll(alice_client, job)
    alice_client.logout()
    alice_client.force_login(bob)

    assert status_fragment(alice_client, job, **alices).status_code == 404
    # Nor with a pass that names bob but was signed for alice.
    forged = {**alices, "p": f"{bob.pk}." + alices["p"].partition(".")[2]}
    assert status_fragment(alice_client, job, **forged).status_code == 404


def test_an_anonymous_poll_is_sent_to_log_in(alice_client, alice):
    job = running(alice, for_seconds=1)
    query = live_poll(alice_client, job)

    response = status_fragment(Client(), job, **query)  # the right URL, without the cookie

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_staff_may_poll_anyones_job(admin_client, alice, django_assert_num_queries):
    job = running(alice, for_seconds=1)
    query = live_poll(admin_client, job)

    with django_assert_num_queries(1):
        assert status_fragment(admin_client, job, **query).status_code == 204


def test_a_password_change_elsewhere_ends_the_polls_session(alice_client, alice):
    job = running(alice, for_seconds=1)
    query = live_poll(alice_client, job)
    assert status_fragment(alice_client, job, **query).status_code == 204

    alice.set_password("a-new-passphrase-2")
    alice.save()

    response = status_fragment(alice_client, job, **query)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_deactivated_user_gets_no_204(alice_client, alice):
    job = running(alice, for_seconds=1)
    query = live_poll(alice_client, job)
    assert status_fragment(alice_client, job, **query).status_code == 204

    alice.is_active = False
    alice.save()

    assert status_fragment(alice_client, job, **query).status_code == 302


def test_a_deleted_job_is_404_to_its_poll(alice_client, alice):
    job = running(alice, for_seconds=1)
    query = live_poll(alice_client, job)
    Job.objects.filter(pk=job.pk).update(deleted_at=timezone.now())

    assert status_fragment(alice_client, job, **query).status_code == 404


def test_a_session_without_its_hash_gets_no_page_and_no_204(alice_client, alice):
    job = running(alice, for_seconds=1)
    session = alice_client.session
    del session[HASH_SESSION_KEY]
    session.save()

    assert alice_client.get(reverse("jobs:detail", args=[job.pk])).status_code == 302
    assert status_fragment(alice_client, job, v="running.1").status_code == 302


def test_an_expired_session_gets_no_204(alice_client, alice):
    job = running(alice, for_seconds=1)
    query = live_poll(alice_client, job)
    session = alice_client.session
    session.set_expiry(timezone.now() - timedelta(seconds=1))
    session.save()

    response = status_fragment(alice_client, job, **query)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def answered_by_the_view(client, job, query) -> bool:
    """Polls once; True if the view answered 204 (its two queries, the user's and the job's, come
    after whatever the fast path tried), False if the fast path did (its one query)."""
    with CaptureQueriesContext(connection) as queries:
        response = status_fragment(client, job, **query)
    assert (response.status_code, response.content) == (204, b"")
    return len(queries) > 1


def test_a_pass_answers_only_for_its_own_session_and_job(alice_client, alice):
    """A pass from another of alice's sessions, or for another of her jobs, is no pass: the poll
    takes the standard path, which still answers her 204."""
    job, other_job = running(alice, for_seconds=1), running(alice, for_seconds=2)
    first = live_poll(alice_client, job)
    second_browser = Client()
    second_browser.force_login(alice)
    second = live_poll(second_browser, job)
    assert first["p"] != second["p"]

    assert answered_by_the_view(second_browser, job, first)
    assert answered_by_the_view(alice_client, other_job, first)
    assert not answered_by_the_view(second_browser, job, second)
    assert not answered_by_the_view(alice_client, job, first)


def test_a_tampered_pass_is_no_pass(alice_client, alice):
    job = running(alice, for_seconds=1)
    query = live_poll(alice_client, job)
    user_id, _, signature = query["p"].partition(".")
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")

    for bad in (f"{user_id}.{flipped}", f"{user_id}.", user_id, f".{signature}", "x.y"):
        assert answered_by_the_view(alice_client, job, {**query, "p": bad}), bad


def test_without_sessions_in_the_database_the_page_has_no_pass_and_still_polls(
    client, alice, settings, django_assert_num_queries
):
    """The fast path finds the session's row in the database; with another session engine the
    page carries no pass, and the view answers every poll."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    client.force_login(alice)
    job = running(alice, for_seconds=1)

    query = live_poll(client, job)

    assert "p" not in query
    with django_assert_num_queries(2):
        assert status_fragment(client, job, **query).status_code == 204


def test_a_logged_out_session_gets_no_204(alice_client, alice):
    job = running(alice, for_seconds=1)
    query = live_poll(alice_client, job)
    session_cookie = alice_client.cookies[settings.SESSION_COOKIE_NAME].value
    assert status_fragment(alice_client, job, **query).status_code == 204

    alice_client.post(reverse("logout"))
    alice_client.cookies[settings.SESSION_COOKIE_NAME] = session_cookie  # kept, e.g. stolen

    response = status_fragment(alice_client, job, **query)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_host_not_allowed_gets_400_not_204(alice_client, alice):
    job = running(alice, for_seconds=1)
    query = live_poll(alice_client, job)

    url = reverse("jobs:status", args=[job.pk])
    response = alice_client.get(url, query, headers={"host": "evil.example"})

    assert response.status_code == 400


def test_only_a_get_is_answered_204(alice_client, alice):
    job = running(alice, for_seconds=1)
    url = poll_url(page(alice_client, job))

    assert alice_client.post(url).status_code == 405


def test_the_204_still_carries_the_security_headers(alice_client, alice, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    job = running(alice, for_seconds=1)
    query = live_poll(alice_client, job)

    url = reverse("jobs:status", args=[job.pk])
    response = alice_client.get(url, query, secure=True)

    assert response.status_code == 204
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Strict-Transport-Security"].startswith("max-age=3600")


@pytest.mark.parametrize("name", ["jobs:detail", "jobs:status"])
@pytest.mark.parametrize("status", [Job.Status.QUEUED, Job.Status.RUNNING, Job.Status.SUCCEEDED])
def test_bob_gets_404_on_alices_job_page_in_every_state(client, alice, bob, name, status):
    job = new_job(alice, status=status, started_at=timezone.now())
    client.force_login(bob)

    assert client.get(reverse(name, args=[job.pk])).status_code == 404
