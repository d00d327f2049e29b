"""The Celery settings that make the paid call happen at most once, checked as a set."""

import base64
import gc
import json

import redis
from django.conf import settings
from django.utils import timezone

from jobs.services.messages import run_message_send


def test_timeouts_and_limits_are_ordered_so_each_layer_fires_after_the_one_inside_it():
    chain = [
        settings.IMAGEROUTER_READ_TIMEOUT,  # one silent read
        settings.IMAGEROUTER_DEADLINE,  # the whole call, keep-alive spaces included
        settings.CELERY_TASK_SOFT_TIME_LIMIT,  # prefork: the task fails the job cleanly
        settings.CELERY_TASK_TIME_LIMIT,  # prefork: the hard kill
        settings.JOB_RUNNING_DEADLINE,  # the sweeper, for every pool
        settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"],  # Redis re-delivery
    ]
    assert chain == sorted(chain) and len(set(chain)) == len(chain), chain


def test_the_read_timeout_allows_the_providers_own_upstream_wait():
    assert settings.IMAGEROUTER_READ_TIMEOUT >= 900


def test_a_message_is_acked_early_and_never_redelivered_by_a_lost_worker():
    assert settings.CELERY_TASK_ACKS_LATE is False
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is False
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1


def test_messages_are_json_with_ids_only():
    assert settings.CELERY_ACCEPT_CONTENT == ["json"]
    assert settings.CELERY_TASK_SERIALIZER == "json"


def test_a_generate_message_carries_nothing_not_even_a_job_id(broker_url):
    client = redis.Redis.from_url(broker_url)
    client.delete("generate")
    job_id = "5f0e8ad8-8a8c-4a3e-9a43-6c2f4ab0c111"
    stamp = timezone.now()

    assert run_message_send(job_id=job_id, stamp=stamp)

    message = json.loads(client.lpop("generate"))
    body = json.loads(base64.b64decode(message["body"]))
    assert message["headers"]["task"] == "jobs.tasks.run_job"
    assert body[0] == [] and body[1] == {}
    assert job_id not in json.dumps(message)
    assert settings.IMAGEROUTER_API_KEY not in json.dumps(message)


def test_paid_calls_and_downloads_are_routed_to_queues_of_their_own():
    from videostudio.celery import app

    def queue_of(name):
        return app.amqp.router.route({}, name)["queue"].name

    assert queue_of("jobs.tasks.run_job") == "generate"
    assert queue_of("jobs.tasks.store_job") == "store"
    assert queue_of("jobs.tasks.sweep") == "celery"


def test_a_ready_worker_leaves_its_startup_objects_out_of_its_rare_full_collections():
    """A full collection walks every object a worker holds; with thousands of calls in flight
    it paused the generation worker for seconds (BENCHMARKS.md). Celery's worker_ready, which
    `celery worker` sends, freezes what startup made and makes full collections rarer."""
    from celery.signals import worker_ready

    from videostudio.celery import WORKER_FULL_COLLECTION_EVERY

    before = gc.get_threshold()
    try:
        worker_ready.send(sender=None)  # as `celery worker` does once its consumer is ready
        assert gc.get_freeze_count() > 10_000  # Django, Celery, the studio's modules
        assert gc.get_threshold() == (before[0], before[1], WORKER_FULL_COLLECTION_EVERY)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
