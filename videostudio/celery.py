import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videostudio.settings")

app = Celery("videostudio")
# Every Celery setting lives in settings.py under the CELERY_ prefix, with its reason.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
