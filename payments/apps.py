from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self):
        from . import cache  # noqa: F401 - declares what a change to these models invalidates
