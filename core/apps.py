from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Shiftboard core"

    def ready(self):
        # Connect the cache-invalidation receivers for every model the apps track.
        # Apps register in their own ready() (after core's), so core connects lazily.
        from . import signals  # noqa: F401
        # Counts statements per database (replicas configured) from the first connection.
        from . import replicas  # noqa: F401
