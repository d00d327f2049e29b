"""The fault suite: each test injects a fault for real (real worker, real Redis, the simulator)
and checks the job's final state and the number of paid calls the simulator counted."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connections

from jobs import services
from jobs.models import Job
from jobs.tasks import run_job
from tests.factories import submit
from tests.helpers import database_url, running_worker, wait_for, wait_until_finished

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("catalog")]

ROOT = Path(__file__).resolve().parents[2]


# 1 ------------------------------------------------------------------------------------------------


def test_the_same_message_delivered_twice_makes_one_paid_call(worker, simulator, alice):
    job = submit(alice, "delivered twice")
    run_job.delay(str(job.pk))  # a duplicate of the message job_create sent

    job = wait_until_finished(job)

    assert job.status == Job.Status.SUCCEEDED
    time.sleep(0.5)  # give the duplicate time to be consumed
    assert simulator.stats()["generation_requests"] == 1
    assert simulator.stats()["paid_calls"] == 1


# 2 ------------------------------------------------------------------------------------------------


def test_a_429_waits_for_retry_after_then_succeeds_with_one_paid_call(worker, simulator, alice):
    simulator.inject({"kind": "rate_limit", "retry_after": 1})

    job = wait_until_finished(submit(alice, "rate limited", response_format="b64_json"))

    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.attempt == 2
    assert (job.finished_at - job.created_at).total_seconds() >= 1
    assert simulator.stats()["paid_calls"] == 1


def test_the_page_says_a_job_is_waiting_to_retry(simulator, alice, alice_client, broker_url):
    simulator.inject({"kind": "rate_limit", "retry_after": 30})
    job = Job.objects.create(owner=alice, prompt="wait", model="ir/test-video")

    services.job_run(job_id=job.pk)

    html = alice_client.get(f"/jobs/{job.pk}/status/").content.decode()
    assert "Waiting to retry" in html and "Nothing has been charged" in html


# 3 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "http_error", "status": 502, "message": "Bad gateway upstream"},
        {"kind": "error_after", "seconds": 0.3, "message": "Provider timed out upstream"},
    ],
    ids=["502", "200-with-error-body"],
)
def test_a_provider_failure_fails_the_job_at_no_cost_and_is_not_retried(
    worker, simulator, alice, fault
):
    simulator.inject(fault)

    job = wait_until_finished(submit(alice, "refunded"))

    assert job.status == Job.Status.FAILED
    assert fault["message"] in job.error
    assert job.cost == 0 and not job.outcome_unknown
    time.sleep(0.5)
    assert simulator.stats()["generation_requests"] == 1
    assert simulator.stats()["paid_calls"] == 0


# 4 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [{"kind": "drop", "after_seconds": 0.3}, {"kind": "slow", "seconds": 3, "keepalive": False}],
    ids=["dropped-connection", "read-timeout"],
)
def test_an_unknown_outcome_fails_as_maybe_charged_and_is_not_retried(
    worker, simulator, alice, settings, fault
):
    settings.IMAGEROUTER_READ_TIMEOUT = 1
    simulator.inject(fault)

    job = wait_until_finished(
        submit(alice, "unknown", model="kling/kling-2.1-standard", seconds="5")
    )

    assert job.status == Job.Status.FAILED
    assert job.outcome_unknown
    assert "may have charged" in job.error
    assert str(job.possible_cost.normalize()) == "0.5"  # the model's top price
    time.sleep(0.5)
    assert simulator.stats()["generation_requests"] == 1


# 5 ------------------------------------------------------------------------------------------------


def test_a_download_that_fails_twice_then_works_succeeds_with_one_paid_call(
    worker, simulator, alice, settings
):
    settings.STORE_RETRY_DELAY = 0
    simulator.inject({"kind": "download_fail", "times": 2, "mode": "truncate"})

    job = wait_until_finished(submit(alice, "flaky download"))

    assert job.status == Job.Status.SUCCEEDED, job.error
    assert simulator.stats()["downloads"] == 3
    assert simulator.stats()["paid_calls"] == 1


def test_a_download_that_never_works_fails_without_calling_the_api_again(
    worker, simulator, alice, settings
):
    settings.STORE_RETRY_DELAY = 0
    simulator.inject({"kind": "download_fail", "times": 10, "mode": "error"})

    job = wait_until_finished(submit(alice, "lost download"))

    assert job.status == Job.Status.FAILED
    assert "made (and paid for) but could not be stored" in job.error
    assert simulator.stats()["generation_requests"] == 1


# 6 ------------------------------------------------------------------------------------------------


def start_worker_process(broker_url, simulator, media_root) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker_url,
        "IMAGEROUTER_API_KEY": django_settings.IMAGEROUTER_API_KEY,
        "IMAGEROUTER_BASE_URL": simulator.url,
        "MEDIA_ROOT": str(media_root),
    }
    command = [sys.executable, "-m", "celery", "-A", "videostudio", "worker", "-l", "WARNING"]
    queues = ["-Q", "generate,store,celery"]
    return subprocess.Popen([*command, *queues, "-c", "2"], cwd=ROOT, env=env)


def test_a_worker_killed_during_the_call_leaves_a_job_the_sweeper_fails(
    broker_url, simulator, alice, settings, media_root
):
    redis.Redis.from_url(broker_url).flushdb()
    simulator.inject({"kind": "slow", "seconds": 30, "keepalive": True})
    process = start_worker_process(broker_url, simulator, media_root)
    try:
        job = submit(alice, "killed mid-call", model="kling/kling-2.1-standard", seconds="5")
        wait_for(
            lambda: Job.objects.get(pk=job.pk).status == Job.Status.RUNNING,
            timeout=60,
            what="the worker process to claim the job",
        )
        time.sleep(0.5)  # the request is now in flight at the simulator
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()

    settings.JOB_RUNNING_DEADLINE = 1
    time.sleep(1.1)
    counts = services.sweep()

    job.refresh_from_db()
    assert counts["failed_lost"] == 1
    assert job.status == Job.Status.FAILED and job.outcome_unknown
    assert "worker stopped" in job.error
    assert not Job.objects.filter(status=Job.Status.RUNNING).exists()
    assert simulator.stats()["generation_requests"] == 1


# 7 ------------------------------------------------------------------------------------------------


def test_jobs_whose_messages_redis_lost_are_requeued_and_all_finish(
    broker_url, simulator, alice, settings
):
    redis.Redis.from_url(broker_url).flushdb()
    jobs = [submit(alice, f"lost message {n}", response_format="b64_json") for n in range(3)]
    redis.Redis.from_url(broker_url).flushdb()  # Redis loses every queued message

    settings.JOB_REQUEUE_AFTER = 0
    time.sleep(0.01)
    assert services.sweep()["requeued"] == 3
    with running_worker(broker_url):
        done = [wait_until_finished(job) for job in jobs]

    assert all(job.status == Job.Status.SUCCEEDED for job in done)
    assert simulator.stats()["paid_calls"] == 3


def test_two_sweepers_at_once_change_each_row_once(broker_url, alice, settings, simulator):
    redis.Redis.from_url(broker_url).flushdb()
    settings.JOB_RUNNING_DEADLINE = 60
    settings.JOB_REQUEUE_AFTER = 60  # the rows below have never been sent; a fresh stamp is not due
    for n in range(10):
        Job.objects.create(owner=alice, model="ir/test-video", prompt=f"stale {n}")
        Job.objects.create(
            owner=alice,
            model="ir/test-video",
            status=Job.Status.RUNNING,
            started_at="2020-01-01T00:00Z",
        )
    results = []

    def sweep_once():
        results.append(services.sweep())
        connections.close_all()

    threads = [threading.Thread(target=sweep_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(r["failed_lost"] for r in results) == 10
    assert sum(r["requeued"] for r in results) == 10
    assert redis.Redis.from_url(broker_url).llen("generate") == 10


# 8 ------------------------------------------------------------------------------------------------


def test_cancel_racing_the_claim_either_cancels_without_a_call_or_runs(
    simulator, alice, broker_url
):
    jobs = [
        Job.objects.create(
            owner=alice, model="ir/test-video", prompt=f"race {n}", response_format="b64_json"
        )
        for n in range(20)
    ]

    def race(job):
        barrier = threading.Barrier(2)

        def run():
            barrier.wait()
            services.job_run(job_id=job.pk)
            connections.close_all()

        def cancel():
            barrier.wait()
            services.job_cancel(job=job)
            connections.close_all()

        threads = [threading.Thread(target=run), threading.Thread(target=cancel)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    for job in jobs:
        race(job)

    outcomes = [Job.objects.get(pk=job.pk) for job in jobs]
    canceled = [job for job in outcomes if job.status == Job.Status.CANCELED]
    ran = [job for job in outcomes if job.status != Job.Status.CANCELED]
    assert all(job.attempt == 0 and job.started_at is None for job in canceled)
    assert all(job.status == Job.Status.SUCCEEDED for job in ran)
    assert simulator.stats()["generation_requests"] == len(ran)


# 9 ------------------------------------------------------------------------------------------------

RANDOM_FAULTS = [
    None,
    None,
    {"kind": "rate_limit", "retry_after": 1},
    {"kind": "http_error", "status": 503},
    {"kind": "error_after", "seconds": 0.2, "message": "upstream failed"},
    {"kind": "drop", "after_seconds": 0.2},
    {"kind": "malformed"},
    {"kind": "download_fail", "times": 1, "mode": "error"},
    {"kind": "insufficient_credits", "status": 200},
]


def test_fifty_jobs_with_random_faults_all_end_and_paid_calls_match(
    worker, simulator, django_user_model, settings
):
    settings.STORE_RETRY_DELAY = 0
    chooser = random.Random(20261124)  # noqa: S311 - a repeatable mix, not a secret
    users = [django_user_model.objects.create_user(f"user{n}") for n in range(5)]
    jobs = []
    for n in range(50):
        prompt = f"random fault job {n:02d}"
        fault = chooser.choice(RANDOM_FAULTS)
        if fault:
            simulator.inject({**fault, "match": {"prompt": prompt}})
        response_format = chooser.choice(["url", "b64_json"])
        jobs.append(submit(users[n % 5], prompt, response_format=response_format))

    done = [wait_until_finished(job, timeout=120) for job in jobs]

    charged = [j for j in done if j.status == Job.Status.SUCCEEDED or j.outcome_unknown]
    assert all(job.is_terminal for job in done)
    assert simulator.stats()["paid_calls"] == len(charged)
    assert {job.status for job in done} == {Job.Status.SUCCEEDED, Job.Status.FAILED}
