from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"

    def ready(self):
        from . import cache  # noqa: F401 - declares what a change to these models invalidates
