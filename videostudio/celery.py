import gc
import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videostudio.settings")

app = Celery("videostudio")
# Every Celery setting lives in settings.py under the CELERY_ prefix, with its reason.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# A worker's full garbage collections, one in WORKER_FULL_COLLECTION_EVERY of the young ones'
# rounds instead of Python's one in ten. A full collection walks every object the process
# holds with the interpreter lock held: in a generation worker with 3,000 calls in flight,
# 660,000-760,000 objects, 0.6 s a walk on a quiet machine and 7 s on a busy one, every 15 s as
# calls came in, and each such pause held every call's answer and any row lock the paused
# thread had (bench/inflight.py, BENCHMARKS.md). Those walks found 44-66 objects of garbage
# each: what a worker frees, it frees by reference counting, and the young collections still
# run as before.
WORKER_FULL_COLLECTION_EVERY = 100


@worker_ready.connect
def collect_rarely(**kwargs) -> None:
    """Once a worker is ready (Celery sends worker_ready for `celery worker`, not for the
    test suite's embedded workers): its startup objects (Django, Celery, the models and
    templates, about 145,000) go to the permanent generation, which no collection walks again,
    and full collections come a tenth as often."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, WORKER_FULL_COLLECTION_EVERY)
