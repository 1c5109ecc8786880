"""``manage.py cache_explain URL [--user ID]``: what a GET to URL would depend on
in the response cache, and HIT or why not (docs/cache.md, "A response looks
stale"). Read only: creates no counter and no entry."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.cache.explain import explain


class Command(BaseCommand):
    help = "Explain the response cache for a GET to URL: scopes, versions, key, entry, row header, HIT or why not."

    def add_arguments(self, parser):
        parser.add_argument("url", help="a path or full URL, query string included, e.g. /api/v1/jobs/?page=2")
        parser.add_argument("--user", type=int, help="the id of the user making the request (default: anonymous)")

    def handle(self, *args, **options):
        user = None
        if options["user"] is not None:
            user = get_user_model().objects.filter(pk=options["user"]).first()
            if user is None:
                raise CommandError(f"no user with id {options['user']}")
        for line in explain(options["url"], user).lines():
            self.stdout.write(line)
