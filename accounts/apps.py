from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        from . import cache  # noqa: F401 - declares what a change to these models invalidates
