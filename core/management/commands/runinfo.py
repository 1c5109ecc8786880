"""``manage.py runinfo``: what this process would run on, in one line each, for
``make run`` to print before the server starts: the database (SQLite file or
PostgreSQL host/name, and read replicas) and the cache (local memory or Redis)."""
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections


def _database(alias: str) -> str:
    conf = connections[alias].settings_dict
    if connections[alias].vendor == "postgresql":
        host = conf.get("HOST") or "local socket"
        port = f":{conf['PORT']}" if conf.get("PORT") else ""
        return f"PostgreSQL, database {conf['NAME']} on {host}{port}"
    if connections[alias].vendor == "sqlite":
        return f"SQLite, file {conf['NAME']}"
    return f"{connections[alias].vendor}, database {conf['NAME']}"


def _cache() -> str:
    conf = settings.CACHES["default"]
    backend = conf["BACKEND"]
    if "redis" in backend.lower():
        locations = conf["LOCATION"] if isinstance(conf["LOCATION"], list | tuple) else [conf["LOCATION"]]
        shown = []
        for location in locations:
            url = urlsplit(str(location))
            shown.append(f"{url.scheme}://{url.hostname}{f':{url.port}' if url.port else ''}{url.path}")
        return "Redis at " + ", ".join(shown) + " (shared by every process)"
    if "locmem" in backend.lower():
        return "local memory (this process only)"
    return backend


class Command(BaseCommand):
    help = "Print the database and cache this configuration runs on."

    def handle(self, *args, **options):
        replicas = [alias for alias in connections if alias != "default"]
        self.stdout.write(f"  Database: {_database('default')}")
        for alias in replicas:
            self.stdout.write(f"            read replica {alias}: {_database(alias)}")
        self.stdout.write(f"  Cache:    {_cache()}")
        self.stdout.write(f"  DEBUG:    {'on' if settings.DEBUG else 'off'}")
