"""``manage.py cache_invalidate SCOPE... | --all``: bump version counters by hand
(``--all``: the global generation, which retires every cached response). Each
bump is one INCR, as after a write; nothing is deleted (docs/cache.md)."""
from django.core.management.base import BaseCommand, CommandError

from core import cache as cache_layer


class Command(BaseCommand):
    help = "Bump the version of scopes (e.g. jobs, job:42, user:7) or, with --all, the global generation."

    def add_arguments(self, parser):
        parser.add_argument("scopes", nargs="*", help="scope names, e.g. jobs job:42 user:7")
        parser.add_argument("--all", action="store_true", help="bump the global generation: every entry is retired")

    def handle(self, *args, **options):
        scopes = list(options["scopes"])
        if options["all"]:
            if scopes:
                raise CommandError("give scopes or --all, not both")
            scopes = [cache_layer.GENERATION_SCOPE]
        if not scopes:
            raise CommandError("give at least one scope, or --all")
        b = cache_layer.backend()
        counters = [b.version_key(s) for s in scopes]
        try:
            before = b.peek(counters)
        except Exception as exc:  # noqa: BLE001
            raise CommandError(f"cache unavailable: {exc!r}; nothing bumped") from exc
        cache_layer.bump_now(scopes)
        if not cache_layer.health.healthy():
            raise CommandError("cache unavailable: the bump was not delivered (this process exits without retrying)")
        after = b.peek(counters)
        for scope, old, new in zip(scopes, before, after):
            note = "" if old is not None else "  (had no counter: nothing cached depended on it; started from the clock)"
            self.stdout.write(f"bumped {scope}: {old if old is not None else '-'} -> {new}{note}")
