from django.apps import AppConfig


class RatingsConfig(AppConfig):
    name = "ratings"

    def ready(self):
        from . import cache  # noqa: F401 - declares what a change to these models invalidates
