"""The fair queue (services/queue.py): a free generate slot runs the fairest queued job, round
robin across people, whatever order the messages came in. Real workers on the real Redis, the
simulator over HTTP, PostgreSQL (FOR UPDATE SKIP LOCKED) when DATABASE_URL names it."""

import os
import socket
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from jobs import services
from jobs.models import Job
from tests.factories import submit
from tests.helpers import at_once, database_url, finished, running_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("catalog")]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_per_person_limits(settings):
    """A batch of 100 from one person: the per-person submit limits are not what is tested."""
    settings.JOB_SUBMITS_PER_MINUTE = settings.JOB_ACTIVE_LIMIT = 0


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol", password="carol-password-1")


def batch(owner, count, *, label="batch") -> list[Job]:
    # b64_json: stored by the generate worker itself, so a generate-only worker finishes jobs.
    return [submit(owner, f"{label} {n}", response_format="b64_json") for n in range(count)]


def claim_order() -> list[Job]:
    return list(Job.objects.filter(started_at__isnull=False).order_by("started_at", "pk"))


def started(jobs) -> int:
    return Job.objects.filter(pk__in=[job.pk for job in jobs], started_at__isnull=False).count()


def test_a_single_job_behind_a_100_job_batch_starts_as_soon_as_one_slot_frees(
    broker_url, simulator, alice, bob
):
    redis.Redis.from_url(broker_url).flushdb()
    alices = batch(alice, 100)
    with running_worker(broker_url, queues=["generate"], concurrency=1):
        wait_for(lambda: started(alices) >= 2, timeout=60, what="the batch to be under way")
        ahead = started(alices)  # begun before Bob submits; one of them holds the only slot

        bobs = submit(bob, "one shot", response_format="b64_json")

        done = wait_for(lambda: finished(bobs.pk), timeout=60, what="Bob's job")
    assert done.status == Job.Status.SUCCEEDED, done.error
    before_bob = Job.objects.filter(owner=alice, started_at__lt=done.started_at).count()
    # The slot that was busy when Bob submitted frees, and runs Bob's job next: at most one
    # more of Alice's may have been claimed in the instant between counting and submitting.
    assert before_bob <= ahead + 1
    assert Job.objects.filter(owner=alice, status=Job.Status.QUEUED).count() >= 90
    # Never two calls for one job. (The worker may stop between a claim and its call, so a
    # started job need not have reached the simulator yet.)
    assert simulator.stats()["generation_requests"] <= started(alices) + 1


def test_three_people_take_turns_whatever_order_they_submitted_in(
    broker_url, simulator, alice, bob, carol
):
    redis.Redis.from_url(broker_url).flushdb()
    jobs = batch(alice, 4) + batch(bob, 4) + batch(carol, 4)

    with running_worker(broker_url, queues=["generate"], concurrency=1):
        for job in jobs:
            wait_for(lambda job=job: finished(job.pk), timeout=60, what="every job")

    owners = [job.owner.username for job in claim_order()]
    assert owners == ["alice", "bob", "carol"] * 4
    assert all(job.status == Job.Status.SUCCEEDED and job.attempt == 1 for job in claim_order())


def test_someone_who_joins_later_takes_a_turn_in_the_round_being_served(alice, bob, carol):
    batch(alice, 6)
    bobs = batch(bob, 2)
    first = [services.job_claim_next().owner.username for _ in range(3)]

    carols = submit(carol, "late but fair", response_format="b64_json")

    rest = [services.job_claim_next() for _ in range(6)]
    # Round 1 is being served (Alice has had her turn in it): Bob's turn, then Carol's, then
    # the rest of Alice's batch, rather than Carol after all of Alice's.
    assert first == ["alice", "bob", "alice"]
    assert [job.owner.username for job in rest] == ["bob", "carol"] + ["alice"] * 4
    assert (rest[0].pk, rest[1].pk) == (bobs[1].pk, carols.pk)
    assert services.job_claim_next() is None


def test_jobs_canceled_before_they_ran_do_not_push_their_owner_back(alice, bob):
    bobs = batch(bob, 3)
    cancelled = batch(alice, 5)
    for job in cancelled:
        assert services.job_cancel(job=job)

    alices = submit(alice, "after changing her mind", response_format="b64_json")

    # Alice's canceled jobs had no turn: her new job shares Bob's first round and, older
    # within it, Bob's job comes first, then hers, not after all of his.
    order = [services.job_claim_next().pk for _ in range(4)]
    assert order == [bobs[0].pk, alices.pk, bobs[1].pk, bobs[2].pk]


def test_a_job_waiting_to_retry_is_passed_over_until_its_time(alice, bob):
    waiting = submit(alice, "rate limited", response_format="b64_json")
    Job.objects.filter(pk=waiting.pk).update(not_before=timezone.now() + timedelta(minutes=1))
    bobs = submit(bob, "ready", response_format="b64_json")

    assert services.job_claim_next().pk == bobs.pk
    assert services.job_claim_next() is None  # Alice's is still waiting: the message is spent
    later = services.job_claim_next(now=timezone.now() + timedelta(minutes=2))
    assert later.pk == waiting.pk


def test_slots_claiming_at_the_same_moment_each_take_a_different_job(alice, bob):
    jobs = batch(alice, 3) + batch(bob, 3)

    claimed, _, errors = at_once(10, lambda n: services.job_claim_next(), refusal=())

    assert errors == []
    taken = [job.pk for job in claimed if job is not None]
    assert sorted(taken) == sorted(job.pk for job in jobs)  # each once, none twice
    assert len(claimed) - len(taken) == 4  # the other slots found nothing left to run
    assert set(Job.objects.values_list("attempt", flat=True)) == {1}


def test_a_lost_message_still_runs_its_job_through_the_sweeper(
    broker_url, simulator, alice, bob, settings
):
    queue = redis.Redis.from_url(broker_url)
    queue.flushdb()
    jobs = batch(alice, 3) + batch(bob, 2)
    assert queue.llen("generate") == 5
    queue.delete("generate")  # Redis lost every message
    settings.JOB_REQUEUE_AFTER = 0

    counts = services.sweep()

    assert counts["requeued"] == 5
    with running_worker(broker_url, queues=["generate"], concurrency=2):
        for job in jobs:
            done = wait_for(lambda job=job: finished(job.pk), timeout=60, what="every job")
            assert done.status == Job.Status.SUCCEEDED and done.attempt == 1
    assert simulator.stats()["generation_requests"] == 5


def test_canceling_a_queued_job_in_the_middle_of_a_batch_keeps_it_from_running(
    broker_url, simulator, alice, alice_client
):
    redis.Redis.from_url(broker_url).flushdb()
    jobs = batch(alice, 20)
    middle = jobs[15]
    with running_worker(broker_url, queues=["generate"], concurrency=1):
        wait_for(lambda: started(jobs) >= 1, timeout=60, what="the batch to be under way")
        response = alice_client.post(reverse("jobs:cancel", args=[middle.pk]), follow=True)
        assert response.status_code == 200
        for job in jobs:
            wait_for(lambda job=job: finished(job.pk), timeout=60, what="every job")

    middle.refresh_from_db()
    assert middle.status == Job.Status.CANCELED and middle.started_at is None
    others = Job.objects.exclude(pk=middle.pk)
    assert set(others.values_list("status", flat=True)) == {Job.Status.SUCCEEDED}
    assert simulator.stats()["generation_requests"] == 19
    # Its message was not lost with it: every other job ran, and none twice.
    assert set(others.values_list("attempt", flat=True)) == {1}


def generate_worker_process(broker_url, simulator, media_root, node) -> subprocess.Popen:
    """A generate worker in a process of its own, as on another host."""
    env = os.environ | {
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker_url,
        "IMAGEROUTER_API_KEY": django_settings.IMAGEROUTER_API_KEY,
        "IMAGEROUTER_BASE_URL": simulator.url,
        "MEDIA_ROOT": str(media_root),
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "celery", "-A", "videostudio", "--quiet", "worker"]
    options = ["-Q", "generate", "-c", "3", "-n", node, "--pool", "threads"]
    return subprocess.Popen([*command, *options], cwd=ROOT, env=env)


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="a worker in another process needs a database server (SQLite's test one is in memory)",
)
def test_two_worker_hosts_never_claim_one_job(broker_url, simulator, alice, bob, media_root):
    redis.Redis.from_url(broker_url).flushdb()
    jobs = batch(alice, 15) + batch(bob, 15)
    host = socket.gethostname()
    workers = [
        generate_worker_process(
            broker_url, simulator, media_root, f"fair{n}-{uuid.uuid4().hex[:6]}@{host}"
        )
        for n in range(2)
    ]
    try:
        for job in jobs:
            wait_for(lambda job=job: finished(job.pk), timeout=120, what="every job")
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)

    assert set(Job.objects.values_list("status", flat=True)) == {Job.Status.SUCCEEDED}
    assert set(Job.objects.values_list("attempt", flat=True)) == {1}
    assert simulator.stats()["generation_requests"] == 30
