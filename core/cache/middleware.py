"""The fast path: ``AnonymousHitMiddleware`` answers a HIT of a public cached
endpoint to an anonymous JSON GET before sessions, auth and DRF run, with the
same key, the same validated lookup and the same bytes as the DRF path; a miss is
handed over to DRF with its lookup. docs/cache.md, "Fast path"."""
from __future__ import annotations

import logging

from django.conf import settings

from . import floors, trace
from .backends import backend
from .keys import GENERATION_SCOPE, LOCK_PREFIX, key_material
from .outage import CacheUnavailable, ensure_healthy, health
from .response import CACHE_REQUESTS

logger = logging.getLogger("shiftboard.cache")

_DENY = object()


def _accepts_json(request) -> bool:
    """What DRF's negotiation would answer with the JSON renderer: no ``?format=``,
    and an Accept header that is absent or names JSON (or a wildcard) and no HTML
    (the browsable API in DEBUG). Anything else goes the normal way."""
    if "format" in request.GET:
        return False
    accept = request.headers.get("Accept", "")
    if not accept.strip():
        return True
    ranges = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if "q=0" in accept.replace(" ", "") or any(r in ("text/html", "application/xhtml+xml") for r in ranges):
        return False
    return any(r in ("*/*", "application/*", "application/json") for r in ranges)


class AnonymousHitMiddleware:
    """Serves a cache HIT of a public ``@cached_response`` endpoint to an anonymous
    GET before sessions, auth, CSRF and DRF run: resolve the URL, compute the same
    key as the view's ``serve_cached`` (same scopes, same versions), one validated
    lookup, and the same bytes and headers as the DRF path would send (envelope,
    Content-Type, X-Cache, Allow, Vary, X-Frame-Options; the outer middlewares add
    X-Request-ID, Server-Timing and the security headers). A miss falls through to
    DRF with the lookup handed over (``request.cache_prelookup``: the rebuild lock
    if it was taken), so nothing is looked up twice.

    Eligible: GET, no ``Authorization`` header, no session cookie, JSON accepted
    (``_accepts_json``), and a handler decorated with ``@cached_response`` that is
    public (``private=False``) whose view allows anonymous reads (AllowAny or
    IsAuthenticatedOrReadOnly, checked once per view and action) and has no
    throttle on GET. Placed after SecurityMiddleware/WhiteNoise, before sessions."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._eligible: dict = {}
        # The per-view request metrics are recorded by django-prometheus's
        # innermost middleware, which a fast hit never reaches: run its hooks here.
        self._after = None
        after_path = "django_prometheus.middleware.PrometheusAfterMiddleware"
        if after_path in settings.MIDDLEWARE:
            from django.utils.module_loading import import_string

            self._after = import_string(after_path)(get_response)

    def _record(self, request, match, response):
        after = self._after
        if after is None:
            return response
        request.resolver_match = match
        after.process_request(request)
        after.process_view(request, match.func, match.args, match.kwargs)
        return after.process_response(request, response)

    def __call__(self, request):
        if (
            request.method != "GET"
            or "HTTP_AUTHORIZATION" in request.META
            or settings.SESSION_COOKIE_NAME in request.COOKIES
            or not _accepts_json(request)
        ):
            return self.get_response(request)
        try:
            response = self._hit(request)
        except Exception as exc:  # noqa: BLE001 - never fail here: DRF answers
            if not isinstance(exc, CacheUnavailable):
                logger.debug("fast path skipped: %r", exc)
            request.cache_prelookup = None
            response = None
        return response if response is not None else self.get_response(request)

    def _target(self, request):
        from django.urls import Resolver404, resolve

        try:
            match = resolve(request.path_info)
        except Resolver404:
            return None
        cls = getattr(match.func, "cls", None)
        if cls is None or "format" in match.kwargs:
            return None
        actions = getattr(match.func, "actions", None)
        handler_name = actions.get("get") if actions is not None else self._get_handler(cls)
        if handler_name is None:
            return None
        key = (cls, handler_name)
        target = self._eligible.get(key)
        if target is None:
            target = self._eligible[key] = self._inspect(match, cls, handler_name, request) or _DENY
        if target is _DENY:
            return None
        return target, match

    @staticmethod
    def _get_handler(cls) -> str:
        """The method a GET runs on a non-viewset view: ``get`` itself, or the
        ``list``/``retrieve`` that the generic ``get`` of DRF calls."""
        from rest_framework import generics

        for base, name in ((generics.ListAPIView, "list"), (generics.RetrieveAPIView, "retrieve")):
            if issubclass(cls, base) and cls.get is base.get:
                return name
        return "get"

    @staticmethod
    def _inspect(match, cls, handler_name, request):
        from rest_framework.permissions import AllowAny, IsAuthenticatedOrReadOnly

        handler = getattr(cls, handler_name, None)
        meta = getattr(handler, "cache_meta", None)
        if meta is None or meta["private"]:
            return None
        view = AnonymousHitMiddleware._view(match, cls, request)
        view.action = handler_name
        permissions = view.get_permissions()
        if not all(type(p) in (AllowAny, IsAuthenticatedOrReadOnly) for p in permissions):
            return None
        if view.get_throttles():
            return None
        renderers = view.get_renderers()
        if not renderers or getattr(renderers[0], "format", None) != "json":
            return None
        return {
            "meta": meta,
            "endpoint": f"{cls.__name__}.{meta['name']}",
            "allow": ", ".join(view.allowed_methods),
        }

    @staticmethod
    def _view(match, cls, request):
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

    def _hit(self, request):
        found = self._target(request)
        if found is None:
            return None
        target, match = found
        ensure_healthy()
        meta, endpoint = target["meta"], target["endpoint"]
        view = self._view(match, match.func.cls, request)
        scopes = set(meta["scopes"](view, request, **match.kwargs))
        names = sorted(scopes | {GENERATION_SCOPE})
        floors.begin()
        material = key_material(request, "public", names)
        try:
            fragment, locked, versions, key = backend().fast_lookup(endpoint, material, names, endpoint)
        except Exception as exc:  # noqa: BLE001 - the DRF path answers (and knows the cache is down)
            if not isinstance(exc, CacheUnavailable):
                health.failed("read", exc)
            return None
        if trace.current() is not None:
            trace.record_key(endpoint, "public", False, key, versions, material)
            if fragment is not None:
                trace.record(path="fast")
                trace.record_decision(trace.HIT)
        if fragment is None:
            request.cache_prelookup = {
                "endpoint": endpoint,
                "key": key,
                "versions": versions,
                "lock_key": LOCK_PREFIX + key if locked else None,
                # None: unknown (or no replicas): the DRF path's build reads the primary.
                "floor": floors.current(),
            }
            return None
        return self._record(request, match, self._response(request, endpoint, bytes(fragment), target["allow"]))

    @staticmethod
    def _response(request, endpoint: str, fragment: bytes, allow: str):
        import json

        from django.http import HttpResponse

        from ..envelope import envelope_tail

        tail = json.dumps({"message": None, **envelope_tail()}, separators=(",", ":"), ensure_ascii=False)
        body = b'{"success":true,' + fragment + b"," + tail[1:].encode()
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        response["X-Cache"] = "HIT"
        response["Allow"] = allow
        response["X-Frame-Options"] = getattr(settings, "X_FRAME_OPTIONS", "DENY")
        response["Content-Length"] = str(len(body))
        # The DRF path reads the session (SessionAuthentication): Vary: Cookie.
        response["Vary"] = "Cookie"
        request.cache_status = "hit"
        CACHE_REQUESTS.labels(endpoint, "hit").inc()
        return response
