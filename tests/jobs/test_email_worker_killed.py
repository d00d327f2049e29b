"""Nothing lost when a worker dies mid-send: a real worker PROCESS is killed (SIGKILL) while the
real SMTP server is still answering its DATA slowly; once the worker's claim has run out, the
sweeper has the reset email delivered, exactly once."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.urls import reverse
from django.utils import timezone

from jobs import services
from jobs.models import OutgoingEmail
from tests.helpers import database_url, running_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def start_email_worker_process(broker_url, smtp_server) -> subprocess.Popen:
    """A worker of its own (as tests/jobs/test_faults.py starts one), sending to the test's SMTP
    server and willing to wait a minute for its answer."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker_url,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_server.port),
        "EMAIL_USE_TLS": "false",
        "EMAIL_TIMEOUT": "60",
    }
    command = [sys.executable, "-m", "celery", "-A", "videostudio", "worker", "-l", "WARNING"]
    return subprocess.Popen([*command, "-Q", "mail", "-c", "2"], cwd=ROOT, env=env)


def test_a_reset_email_whose_worker_was_killed_mid_send_is_delivered_once(
    broker_url, smtp_server, client, django_user_model
):
    django_user_model.objects.create_user("carol", "carol@example.com", "carol-old-pw-1")
    redis.Redis.from_url(broker_url).flushdb()
    smtp_server.mailbox.delay = 60  # the server takes its time over the message
    process = start_email_worker_process(broker_url, smtp_server)
    try:
        client.post(reverse("password_reset"), {"email": "carol@example.com"})
        wait_for(
            lambda: smtp_server.mailbox.data_started == 1,
            timeout=60,
            what="the worker process to be sending the message",
        )
        email = OutgoingEmail.objects.get(to="carol@example.com")
        assert email.attempts == 1 and email.claimed_until > timezone.now()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()

    time.sleep(0.5)
    assert smtp_server.mailbox.messages == []  # the server never said "250 OK": not taken
    smtp_server.mailbox.delay = 0
    email.refresh_from_db()
    assert email.status == "pending"

    with running_worker(broker_url, queues=("mail",)):
        services.sweep()  # the dead worker's claim still holds: nobody sends it yet
        time.sleep(1)
        assert smtp_server.mailbox.messages == []

        # services/mail.py CLAIM_SECONDS later (the clock moved on, not the row's state): the
        # claim has run out, and the message is older than a fresh one's own task.
        later = timezone.now() - timedelta(seconds=1)
        OutgoingEmail.objects.filter(pk=email.pk).update(
            claimed_until=later, created_at=later - timedelta(minutes=1)
        )
        services.sweep()
        smtp_server.mailbox.wait_for(1)
        wait_for(lambda: OutgoingEmail.objects.get(pk=email.pk).status == "sent", what="sent")
        services.sweep()  # a sent message is never sent again
        time.sleep(1)

    [message] = smtp_server.mailbox.messages
    assert message["X-Envelope-To"] == "carol@example.com"
    assert message["Subject"] == "Reset your VideoStudio password"
    assert message["Message-ID"] == email.message_id
    email.refresh_from_db()
    assert email.attempts == 2
