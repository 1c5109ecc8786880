"""The Debug Toolbar panel "Response cache": for the current request, the cached
endpoint and the decision (HIT, MISS and why, BYPASS, NOT CACHED), the coarse
scopes and the versions read, the row scopes with the versions stored in the
entry against those current at lookup, the cache round trips and their time, and
for a write the scopes bumped after commit (or that a rollback bumped nothing).

It switches on the cache layer's recording for the request (``trace.tracing``)
and shows what was recorded: no lookup or query of its own. Registered in
``DEBUG_TOOLBAR_PANELS`` only when the toolbar is on (config/settings/base.py),
so without the toolbar this module is never imported."""
from __future__ import annotations

from debug_toolbar.panels import Panel

from . import trace


class ResponseCachePanel(Panel):
    title = "Response cache"
    template = "core/cache_panel.html"

    def process_request(self, request):
        with trace.tracing() as recorded:
            response = super().process_request(request)
        self._trace = recorded
        return response

    def generate_stats(self, request, response):
        recorded = getattr(self, "_trace", None)
        if recorded is None:
            return
        stats = recorded.as_stats()
        stats["method"] = request.method
        stats["url"] = request.get_full_path()
        stats["status_code"] = response.status_code
        stats["x_cache"] = response.get("X-Cache", "")
        stats["backend"] = _backend_name()
        self.record_stats(stats)

    @property
    def nav_subtitle(self):
        stats = self.get_stats()
        if not stats:
            return ""
        parts = []
        if stats.get("decision"):
            parts.append(stats["decision"] + (f" · {stats['endpoint']}" if stats.get("endpoint") else ""))
        elif stats.get("method") == "GET":
            parts.append("not a cached endpoint")
        if stats.get("bumps_sent"):
            parts.append(f"{len(stats['bumps_sent'])} scope(s) bumped")
        elif stats.get("rolled_back"):
            parts.append(trace.ROLLED_BACK)
        return "; ".join(parts)

    @property
    def content(self):
        from django.template.loader import render_to_string

        stats = dict(self.get_stats())
        stats["round_trip_count"] = len(stats.get("round_trips", ()))
        stats["rows_changed"] = [row for row in stats.get("rows", ()) if row[1] != row[2]]
        return render_to_string(self.template, stats)


def _backend_name() -> str:
    from .backends import RedisBackend, backend

    inner = getattr(backend(), "_inner", None) or backend()
    return "Redis" if isinstance(inner, RedisBackend) else "local memory"
