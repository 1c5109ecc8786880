"""``manage.py cache_stats``: the response cache's hit ratio (overall and per
endpoint) and how many version counters and cached responses are live, per scope
family and per endpoint.

The hit and miss counts are the ones every server process adds to one Redis hash
inside the round trips it makes anyway (docs/cache.md), so they cover all
processes since the last ``--reset``. Counting live keys uses SCAN: fine in this
admin command, never done on the request path.
"""
import json
import re
from collections import Counter

from django.core.management.base import BaseCommand

from core import cache as cache_layer

_ID = re.compile(r"(?<=:)\d+(?=:|$)")


def scope_family(scope: str) -> str:
    """``job:42`` -> ``job:<id>``; ``applications:user:7`` -> ``applications:user:<id>``."""
    return _ID.sub("<id>", scope)


def collect() -> dict:
    backend = cache_layer.backend()
    raw = backend.stats()
    endpoints = {}
    for field, value in raw.items():
        name, _, what = field.rpartition("|")
        endpoints.setdefault(name, {"lookup": 0, "miss": 0})[what] = value
    for counts in endpoints.values():
        counts["hit"] = max(0, counts["lookup"] - counts["miss"])
        counts["hit_ratio"] = round(counts["hit"] / counts["lookup"], 4) if counts["lookup"] else None
    lookups = sum(c["lookup"] for c in endpoints.values())
    hits = sum(c["hit"] for c in endpoints.values())
    versions = Counter(scope_family(k[len(cache_layer.VERSION_PREFIX):]) for k in backend.scan_prefix(cache_layer.VERSION_PREFIX))
    responses = Counter(
        k[len(cache_layer.RESPONSE_PREFIX):].rsplit(":", 1)[0] for k in backend.scan_prefix(cache_layer.RESPONSE_PREFIX)
    )
    return {
        "lookups": lookups,
        "hits": hits,
        "misses": lookups - hits,
        "hit_ratio": round(hits / lookups, 4) if lookups else None,
        "endpoints": dict(sorted(endpoints.items())),
        "version_counters": dict(sorted(versions.items())),
        "responses": dict(sorted(responses.items())),
    }


class Command(BaseCommand):
    help = "Print the response cache's hit ratio and the live keys per scope family and endpoint."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--reset", action="store_true", help="zero the hit/miss counts afterwards")

    def handle(self, *args, **options):
        stats = collect()
        if options["json"]:
            self.stdout.write(json.dumps(stats, indent=2))
        else:
            self._print(stats)
        if options["reset"]:
            cache_layer.backend().reset_stats()
            self.stdout.write("hit/miss counts reset.")

    def _print(self, stats):
        ratio = stats["hit_ratio"]
        self.stdout.write(
            f"hit ratio: {ratio:.1%} ({stats['hits']} hits, {stats['misses']} misses)"
            if ratio is not None
            else "hit ratio: n/a (no lookups counted yet)"
        )
        if stats["endpoints"]:
            self.stdout.write("\nper endpoint:                               lookups     hits   ratio")
            for name, c in stats["endpoints"].items():
                r = f"{c['hit_ratio']:.1%}" if c["hit_ratio"] is not None else "n/a"
                self.stdout.write(f"  {name:<40} {c['lookup']:>8} {c['hit']:>8} {r:>7}")
        self.stdout.write(f"\nlive version counters per scope family ({sum(stats['version_counters'].values())}):")
        for family, n in stats["version_counters"].items():
            self.stdout.write(f"  {family:<40} {n:>8}")
        self.stdout.write(f"\nlive cached responses per endpoint ({sum(stats['responses'].values())}):")
        for endpoint, n in stats["responses"].items():
            self.stdout.write(f"  {endpoint:<40} {n:>8}")
