from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Video jobs"

    def ready(self):
        from . import logcontext
        from .services import access

        logcontext.connect_signals()
        access.connect_signals()
