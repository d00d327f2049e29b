"""Abuse: guessing passwords, flooding the queue. Each limit answers with what to do next."""

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from jobs import services
from jobs.models import Job
from tests.factories import form_data, submit
from tests.helpers import at_once

pytestmark = pytest.mark.usefixtures("catalog")

FORM = form_data()


def log_in(username, password, *, address="203.0.113.7", **headers):
    return Client(REMOTE_ADDR=address, **headers).post(
        reverse("login"), {"username": username, "password": password}
    )


def fail_logins(username, times, **kwargs):
    for _ in range(times):
        log_in(username, "not-the-password", **kwargs)


# --- Log-in throttling ---------------------------------------------------------------------------


def test_five_wrong_passwords_lock_that_username_from_that_address(alice, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in("alice", "not-the-password").status_code == 200  # the form, with its error

    response = log_in("alice", "not-the-password")

    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed log-ins" in page
    assert "Try again in 15 minutes" in page
    # Even the right password waits out the cool-off: the guesser learns nothing.
    assert log_in("alice", "alice-password-1").status_code == 429


def test_a_lockout_does_not_lock_the_same_user_elsewhere_or_others_here(alice, bob, settings):
    """Per username and address: a stranger cannot lock alice out of her own desk, and one
    office behind one address does not lock out everyone in it."""
    fail_logins("alice", settings.AXES_FAILURE_LIMIT)

    assert log_in("alice", "alice-password-1", address="198.51.100.2").status_code == 302
    assert log_in("bob", "bob-password-1").status_code == 302


def test_the_lockout_ends_after_the_cool_off(alice, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    fail_logins("alice", settings.AXES_FAILURE_LIMIT)
    assert log_in("alice", "alice-password-1").status_code == 429

    time.sleep(1.5)

    assert log_in("alice", "alice-password-1").status_code == 302


def test_the_admin_log_in_is_throttled_too(admin_user, settings):
    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("admin:login"), {"username": "admin", "password": "wrong"})

    response = client.post(reverse("admin:login"), {"username": "admin", "password": "password"})

    assert response.status_code == 429


def test_behind_a_proxy_the_forwarded_address_is_the_one_throttled(alice, settings):
    """With one trusted proxy, the address it appended counts, not the proxy's own, and not what
    the client wrote further left."""
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    for n in range(settings.AXES_FAILURE_LIMIT):
        log_in("alice", "wrong", address=proxy, HTTP_X_FORWARDED_FOR=f"1.2.3.{n}, 203.0.113.7")

    assert log_in("alice", "alice-password-1", address=proxy,
                  HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429  # fmt: skip
    assert log_in("alice", "alice-password-1", address=proxy,
                  HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 302  # fmt: skip


# --- Submit rate --------------------------------------------------------------------------------


def test_submits_past_the_per_minute_limit_are_refused_with_when_to_retry(
    alice_client, alice, bob, settings
):
    settings.JOB_SUBMITS_PER_MINUTE = 3
    for _ in range(3):
        assert alice_client.post(reverse("jobs:create"), FORM).status_code == 302

    response = alice_client.post(reverse("jobs:create"), FORM)

    assert response.status_code == 200
    page = response.content.decode()
    assert "You have started 3 videos in the last minute" in page
    assert "Try again in" in page
    assert Job.objects.filter(owner=alice).count() == 3
    # The limit is alice's alone.
    bob_client = Client()
    bob_client.force_login(bob)
    assert bob_client.post(reverse("jobs:create"), FORM).status_code == 302


def test_a_retry_counts_as_a_submit(alice_client, alice, settings):
    settings.JOB_SUBMITS_PER_MINUTE = 1
    failed = Job.objects.create(
        owner=alice, prompt="once more", model="ir/test-video", status=Job.Status.FAILED
    )
    alice_client.post(reverse("jobs:create"), FORM)

    response = alice_client.post(reverse("jobs:retry", args=[failed.pk]), follow=True)

    assert "the most this studio allows" in response.content.decode()
    assert Job.objects.filter(owner=alice).count() == 2  # the failed one and the first submit


# --- Active jobs --------------------------------------------------------------------------------


def test_a_submit_past_the_active_job_cap_is_refused_until_one_finishes(
    alice_client, alice, settings
):
    settings.JOB_ACTIVE_LIMIT = 2
    for _ in range(2):
        alice_client.post(reverse("jobs:create"), FORM)

    response = alice_client.post(reverse("jobs:create"), FORM)

    assert "You already have 2 videos queued or generating" in response.content.decode()
    assert Job.objects.filter(owner=alice).count() == 2

    services.job_cancel(job=Job.objects.filter(owner=alice).first())
    assert alice_client.post(reverse("jobs:create"), FORM).status_code == 302


def test_finished_and_storing_jobs_do_not_count_against_the_cap(alice_client, alice, settings):
    """The cap is on generations waiting or in flight; a job whose paid call is over is not."""
    settings.JOB_ACTIVE_LIMIT = 1
    for status in (Job.Status.STORING, Job.Status.SUCCEEDED, Job.Status.FAILED):
        Job.objects.create(owner=alice, model="ir/test-video", status=status)

    assert alice_client.post(reverse("jobs:create"), FORM).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_submits_never_pass_the_active_job_cap(alice, broker_url, settings):
    settings.JOB_ACTIVE_LIMIT = 5
    settings.JOB_SUBMITS_PER_MINUTE = 0
    accepted, refused, errors = at_once(
        20, lambda n: submit(alice, f"race {n}"), services.TooManyActiveJobsError
    )

    assert errors == []
    assert len(accepted) == 5 and len(refused) == 15
    assert Job.objects.filter(owner=alice).count() == 5
