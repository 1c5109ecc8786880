from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Shiftboard core"

    def ready(self):
        # ``<id:pk>`` in every app's URLs (before any URLconf is loaded).
        from .converters import register

        register()
        # Connect the cache-invalidation receivers for every model the apps track.
        # Apps register in their own ready() (after core's), so core connects lazily.
        # Counts statements per database (replicas configured) from the first connection.
        # The slow-query hook goes on every database connection as it is made.
        from . import (  # noqa: F401
            db_instrumentation,  # noqa: F401
            replicas,
            signals,
        )
