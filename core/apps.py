from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Shiftboard core"

    def ready(self):
        # ``<id:pk>`` in every app's URLs (before any URLconf is loaded).
        from .converters import register

        register()
        # signals: the cache-invalidation receivers for every model the apps track
        # (apps register in their own ready(), after core's, so core connects lazily).
        # replicas: counts statements per database (replicas configured).
        # db_instrumentation: the slow-query hook on every connection as it is made.
        # checks: the deploy system checks register on import.
        from . import checks, db_instrumentation, replicas, signals  # noqa: F401
