"""The outbox (services/mail.py) against a real SMTP server on loopback (tests/smtp.py): each
event is one message, sent by a real worker, retried while the server is down or says "later",
given up visibly when it refuses for good, and found again by the sweeper when its task or its
worker was lost. The first message that goes through it: staff hear that the credit is gone."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from jobs import services
from jobs.models import Job, OutgoingEmail
from tests.factories import submit
from tests.helpers import wait_for
from tests.smtp import html_of, text_of

pytestmark = pytest.mark.usefixtures("catalog", "broker_url")


@pytest.fixture
def staff(django_user_model):
    return [
        django_user_model.objects.create_user(
            name, f"{name}@example.com", "pw", is_staff=True, first_name=name.title()
        )
        for name in ("olga", "omar")
    ]


def out_of_credit(simulator, alice) -> Job:
    simulator.inject({"kind": "insufficient_credits", "status": 500})
    job = submit(alice)
    services.job_run(job_id=job.pk)
    return job


def queued_email(**overrides) -> OutgoingEmail:
    """A message as email_queue leaves it, committed, its task not yet run."""
    return services.email_queue(
        key=overrides.pop("key", "check:1"),
        to=overrides.pop("to", "olga@example.com"),
        subject="ImageRouter is out of credit: generations are failing",
        template="out_of_credit",
        context={
            "person": User(username="olga"),
            "notice": {"message": "no credit"},
            "notices_path": "/admin/",
        },
    )


@pytest.mark.django_db(transaction=True)
def test_staff_are_emailed_once_each_when_the_credit_runs_out(
    worker, smtp_server, simulator, alice, staff, django_user_model
):
    django_user_model.objects.create_user("nomail", "", "pw", is_staff=True)

    out_of_credit(simulator, alice)
    out_of_credit(simulator, alice)  # the same open notice: nobody is told twice

    messages = smtp_server.mailbox.wait_for(2)
    wait_for(lambda: OutgoingEmail.objects.filter(status="sent").count() == 2, what="marked sent")
    assert sorted(m["X-Envelope-To"] for m in messages) == [
        "olga@example.com",
        "omar@example.com",
    ]
    olga = smtp_server.mailbox.to("olga@example.com")[0]
    assert olga["Subject"] == "ImageRouter is out of credit: generations are failing"
    assert olga["From"] == "VideoStudio <videostudio@localhost>"
    assert "Hello Olga," in text_of(olga)
    assert "out of credit" in html_of(olga)
    assert "http://127.0.0.1:8000/admin/jobs/notice/" in text_of(olga)
    assert alice.email not in [m["X-Envelope-To"] for m in messages]
    assert len(smtp_server.mailbox.messages) == 2


@pytest.mark.django_db(transaction=True)
def test_a_busy_server_gets_the_message_again_after_a_backoff(smtp_server):
    smtp_server.mailbox.refuse(2, "451 4.3.0 Mailbox busy, try again later")
    email = queued_email()

    assert services.email_send(email_id=email.pk) == "retry"
    email.refresh_from_db()
    assert email.status == "pending" and email.attempts == 1
    assert "451 4.3.0 Mailbox busy" in email.last_error
    wait = (email.next_attempt_at - timezone.now()).total_seconds()
    assert 25 < wait <= 30
    assert services.email_send(email_id=email.pk) == "skipped"  # not due yet

    OutgoingEmail.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
    assert services.email_send(email_id=email.pk) == "retry"
    email.refresh_from_db()
    assert 55 < (email.next_attempt_at - timezone.now()).total_seconds() <= 60  # longer

    OutgoingEmail.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
    assert services.email_send(email_id=email.pk) == "sent"
    email.refresh_from_db()
    assert email.status == "sent" and email.attempts == 3 and email.sent_at
    assert len(smtp_server.mailbox.messages) == 1
    assert smtp_server.mailbox.refused == 2


@pytest.mark.django_db(transaction=True)
def test_a_server_that_is_down_delays_the_message_and_the_sweeper_sends_it_when_it_is_back(
    worker, smtp_server
):
    smtp_server.stop()
    email = queued_email()
    wait_for(lambda: OutgoingEmail.objects.get(pk=email.pk).attempts == 1, what="the first attempt")
    email.refresh_from_db()
    assert email.status == "pending"
    assert "could not reach the SMTP server 127.0.0.1" in email.last_error

    smtp_server.start()
    past = timezone.now() - timedelta(minutes=1)
    OutgoingEmail.objects.filter(pk=email.pk).update(next_attempt_at=past, created_at=past)
    services.sweep()

    smtp_server.mailbox.wait_for(1)
    wait_for(lambda: OutgoingEmail.objects.get(pk=email.pk).status == "sent", what="sent")
    assert OutgoingEmail.objects.get(pk=email.pk).attempts == 2


@pytest.mark.django_db(transaction=True)
def test_a_message_whose_worker_died_mid_send_is_sent_once_its_claim_runs_out(worker, smtp_server):
    email = queued_email()
    # What a worker that died while talking to the server leaves behind: the row claimed,
    # one attempt counted, nothing sent.
    past = timezone.now() - timedelta(minutes=5)
    OutgoingEmail.objects.filter(pk=email.pk).update(
        attempts=1, claimed_until=timezone.now() + timedelta(minutes=1), created_at=past
    )
    assert services.email_send(email_id=email.pk) == "skipped"  # still held: no second sender
    services.sweep()
    assert smtp_server.mailbox.messages == []

    OutgoingEmail.objects.filter(pk=email.pk).update(claimed_until=past)
    services.sweep()

    smtp_server.mailbox.wait_for(1)
    wait_for(lambda: OutgoingEmail.objects.get(pk=email.pk).status == "sent", what="sent")
    services.sweep()
    assert len(smtp_server.mailbox.messages) == 1
    assert smtp_server.mailbox.messages[0]["Message-ID"] == f"<{email.pk}@videostudio>"


@pytest.mark.django_db(transaction=True)
def test_a_refused_address_is_given_up_shown_to_staff_and_can_be_sent_again(
    smtp_server, admin_client
):
    smtp_server.mailbox.refuse(1, "550 5.1.1 No such user here")
    email = queued_email(to="gone@example.com")

    assert services.email_send(email_id=email.pk) == "failed"

    page = admin_client.get(reverse("admin:jobs_outgoingemail_changelist") + "?status=failed")
    html = page.content.decode()
    assert "gone@example.com" in html and "550 5.1.1 No such user here" in html

    response = admin_client.post(
        reverse("admin:jobs_outgoingemail_changelist"),
        {"action": "send_again", "_selected_action": [str(email.pk)]},
        follow=True,
    )
    assert "1 message(s) queued again" in response.content.decode()
    assert services.email_send(email_id=email.pk) == "sent"
    assert len(smtp_server.mailbox.messages) == 1
    # A message sent meanwhile is not sent again, whoever asks.
    assert services.email_send_again(email=email) is False
    assert services.email_send(email_id=email.pk) == "skipped"
    assert len(smtp_server.mailbox.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_a_message_is_given_up_after_its_attempts(smtp_server, settings):
    settings.EMAIL_MAX_ATTEMPTS = 2
    smtp_server.mailbox.refuse(5)
    email = queued_email()

    assert services.email_send(email_id=email.pk) == "retry"
    OutgoingEmail.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
    assert services.email_send(email_id=email.pk) == "failed"
    email.refresh_from_db()
    assert email.status == "failed" and email.attempts == 2


@pytest.mark.django_db(transaction=True)
def test_one_event_queued_twice_is_one_message(smtp_server):
    assert queued_email(key="event:7") is not None
    assert queued_email(key="event:7") is None
    assert OutgoingEmail.objects.filter(key="event:7").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_repeated_event_inside_a_transaction_leaves_the_transactions_own_work(alice):
    """A store reports its job's end inside the transaction that ended it; a second report of
    the same event (a duplicate store, a sweeper) must neither fail that work nor send twice."""
    queued_email(key="job-succeeded:1")
    with transaction.atomic():
        User.objects.filter(pk=alice.pk).update(first_name="Alice")
        assert queued_email(key="job-succeeded:1") is None
        User.objects.filter(pk=alice.pk).update(last_name="Liddell")  # still usable

    alice.refresh_from_db()
    assert (alice.first_name, alice.last_name) == ("Alice", "Liddell")
    assert OutgoingEmail.objects.filter(key="job-succeeded:1").count() == 1
