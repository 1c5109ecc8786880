"""What the fast path (middleware.py) knows of a request and its URL before DRF
runs: whether DRF would answer it with JSON, the GET handler of the view its path
resolves to (remembered per path), a view instance made as ``as_view()`` makes
it, and the envelope's end as the JSON renderer writes it."""
from __future__ import annotations

import re

from .query import get_handler_name

_MISSING = object()
_PLAIN_ID = re.compile(r"[A-Za-z0-9._-]*")
# Paths whose resolution is remembered, per process (then it starts over).
RESOLVED_PATHS = 4096
_resolved: dict = {}


def accepts_json(request) -> bool:
    """What DRF's negotiation would answer with the JSON renderer: no ``?format=``,
    and an Accept header that is absent or names JSON (or a wildcard) and no HTML
    (the browsable API in DEBUG). Anything else goes the normal way."""
    if "format" in request.GET:
        return False
    # META, not request.headers: building HttpHeaders walks every META key.
    accept = request.META.get("HTTP_ACCEPT", "")
    if not accept.strip():
        return True
    ranges = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if "q=0" in accept.replace(" ", "") or any(r in ("text/html", "application/xhtml+xml") for r in ranges):
        return False
    return any(r in ("*/*", "application/*", "application/json") for r in ranges)


def make_view(match, cls, request):
    """The view instance ``as_view()`` would make for ``match`` (actions bound,
    ``request``, ``args``, ``kwargs`` set), without dispatching it."""
    initkwargs = getattr(match.func, "initkwargs", {}) or {}
    view = cls(**initkwargs)
    actions = getattr(match.func, "actions", None)
    if actions is not None:
        actions = dict(actions)
        if "get" in actions and "head" not in actions:
            actions["head"] = actions["get"]
        view.action_map = actions
        for method, action in actions.items():
            setattr(view, method, getattr(view, action))
    elif hasattr(view, "get") and not hasattr(view, "head"):
        view.head = view.get  # as Django's View.setup does
    view.request = request
    view.args = match.args
    view.kwargs = match.kwargs
    view.format_kwarg = None
    return view


def resolve_handler(path: str):
    """``resolve(path)`` and the GET handler of a cached view's URL, remembered
    per URLconf and path (bounded): resolving walks the URL patterns, which
    costs more than the rest of a hit. The match is only read here, never
    changed; a miss lets Django resolve the request again as always.
    ``None``: not a DRF view answering GET (or no match)."""
    from django.urls import Resolver404, get_resolver, get_urlconf

    resolver = get_resolver(get_urlconf())
    cache_key = (resolver, path)
    found = _resolved.get(cache_key, _MISSING)
    if found is not _MISSING:
        return found
    try:
        match = resolver.resolve(path)
    except Resolver404:
        return None
    cls = getattr(match.func, "cls", None)
    found = None
    if cls is not None and "format" not in match.kwargs:
        handler_name = get_handler_name(match.func)
        if handler_name is not None:
            found = (match, cls, handler_name)
    if len(path) <= 256:
        if len(_resolved) >= RESOLVED_PATHS:
            _resolved.clear()
        _resolved[cache_key] = found
    return found


def envelope_end() -> bytes:
    """The envelope's end as the JSON renderer writes it (``"message":null,
    "correlation_id":…,"timestamp":…}``), without a JSON encoder when the request
    id needs no escaping (RequestIDMiddleware's are letters, digits and ``._-``)."""
    from ..envelope import envelope_tail

    tail = envelope_tail()
    rid = tail["correlation_id"]
    if isinstance(rid, str) and _PLAIN_ID.fullmatch(rid):
        return f'"message":null,"correlation_id":"{rid}","timestamp":"{tail["timestamp"]}"}}'.encode()
    import json

    return json.dumps({"message": None, **tail}, separators=(",", ":"), ensure_ascii=False)[1:].encode()
