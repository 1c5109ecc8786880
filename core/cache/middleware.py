"""The fast path: ``AnonymousHitMiddleware`` answers a HIT of a cached endpoint
to a JSON GET before sessions, auth and DRF run, with the same key, the same
validated lookup and the same bytes and headers as the DRF path; a miss is handed
over to DRF with its lookup. Anonymous GETs of public endpoints, and GETs with a
token whose cached entry is valid (core/cache/callers.py) of any cached endpoint,
public or private, after the view's own permission checks. docs/cache.md, "Fast
path" and "Signed-in callers"."""
from __future__ import annotations

import logging
import time

from django.conf import settings

from . import floors, trace
from .backends import backend
from .callers import (
    CachedTokenAuthentication,
    cached_caller,
    forget_caller,
    remembered_caller,
    token_from_header,
)
from .dispatch import accepts_json, envelope_end, make_view, resolve_handler
from .identity import endpoint_name
from .keys import (
    GENERATION_SCOPE,
    LOCK_PREFIX,
    NOT_MODIFIED,
    etag_value,
    forget_created,
    if_none_match,
    key_material,
)
from .measure import CACHE_REQUESTS
from .outage import CacheUnavailable, ensure_healthy, health
from .query import get_handler_name  # noqa: F401 - also imported from here (tests/perf)

logger = logging.getLogger("shiftboard.cache")

_DENY = object()


class _Refused(Exception):
    """A permission refused the caller: DRF answers the request."""


class AnonymousHitMiddleware:
    """Serves a cache HIT of a public ``@cached_response`` endpoint to an anonymous
    GET before sessions, auth, CSRF and DRF run: resolve the URL, compute the same
    key as the view's ``serve_cached`` (same scopes, same versions), one validated
    lookup, and the same bytes and headers as the DRF path would send (envelope,
    Content-Type, X-Cache, Allow, Vary, X-Frame-Options; the outer middlewares add
    X-Request-ID, Server-Timing and the security headers). A miss falls through to
    DRF with the lookup handed over (``request.cache_prelookup``: the rebuild lock
    if it was taken), so nothing is looked up twice.

    Eligible: GET, no session cookie, JSON accepted (``accepts_json``), a handler
    decorated with ``@cached_response`` whose view has no throttle on GET, and
    either no ``Authorization`` header, a public handler and a view that allows
    anonymous reads (AllowAny or IsAuthenticatedOrReadOnly, checked once per view
    and action); or ``Authorization: Token <key>`` with a valid cached entry for
    the key (its user, without a query), a view authenticated by the default
    classes, and every permission of the view granting that user (checked per
    request, as DRF would; anything else, a denial included, goes to DRF, which
    answers it). A private entry is keyed by that user, as the DRF path keys it.
    Placed after SecurityMiddleware/WhiteNoise, before sessions."""

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
            or settings.SESSION_COOKIE_NAME in request.COOKIES
            or not accepts_json(request)
        ):
            return self.get_response(request)
        forget_created()  # the counters this request's reads create (versions.drop_created)
        token = None
        if "HTTP_AUTHORIZATION" in request.META:
            token = token_from_header(request)
            if token is None:
                return self.get_response(request)
        try:
            response = self._hit(request, token)
        except Exception as exc:  # noqa: BLE001 - never fail here: DRF answers
            if not isinstance(exc, CacheUnavailable):
                logger.debug("fast path skipped: %r", exc)
            request.cache_prelookup = None
            response = None
        return response if response is not None else self.get_response(request)

    def _target(self, request, signed_in: bool = False):
        resolved = resolve_handler(request.path_info)
        if resolved is None:
            return None
        match, cls, handler_name = resolved
        key = (cls, handler_name, signed_in)
        target = self._eligible.get(key)
        if target is None:
            target = self._eligible[key] = self._inspect(match, cls, handler_name, request, signed_in) or _DENY
        if target is _DENY:
            return None
        return target, match

    @staticmethod
    def _inspect(match, cls, handler_name, request, signed_in: bool):
        from rest_framework.permissions import AllowAny, IsAuthenticatedOrReadOnly

        handler = getattr(cls, handler_name, None)
        meta = getattr(handler, "cache_meta", None)
        if meta is None or (meta["private"] and not signed_in):
            return None
        view = make_view(match, cls, request)
        view.action = handler_name
        if signed_in:
            # The caller is resolved from the token entry only where DRF would
            # resolve it with the token first (the default authentication).
            authenticators = view.get_authenticators()
            if not authenticators or type(authenticators[0]) is not CachedTokenAuthentication:
                return None
        else:
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
            "endpoint": endpoint_name(cls, meta["name"]),
            "allow": ", ".join(view.allowed_methods),
            "action": handler_name,
        }

    def _hit(self, request, token: str | None):
        found = self._target(request, signed_in=token is not None)
        if found is None:
            return None
        target, match = found
        ensure_healthy()
        meta, endpoint = target["meta"], target["endpoint"]
        view = make_view(match, match.func.cls, request)
        view.action = target["action"]
        private = meta["private"]
        caller = "public"
        checked = None  # a remembered caller, confirmed by the lookup itself
        if token is not None:
            try:
                remembered = remembered_caller(token) if backend().checks_caller and not trace.current() else None
                if remembered is not None:
                    user, checked = remembered
                else:
                    user = cached_caller(token)
            except Exception as exc:  # noqa: BLE001 - the DRF path answers (and knows the cache is down)
                if not isinstance(exc, CacheUnavailable):
                    health.failed("read", exc)
                return None
            if user is None:
                return None  # no valid entry: DRF authenticates (and keeps one)
            request.user = user
            if private:
                caller = f"user:{user.pk}"
        try:
            # The same permission outcome as DRF's: every permission must grant
            # this user; a denial (or a NotFound raised by one) is DRF's to answer.
            if token is not None and not all(p.has_permission(request, view) for p in view.get_permissions()):
                raise _Refused
            # The resource's identity and the handler that reads the query (keys.path_identity,
            # query.canonical_query, which scope functions may ask); Django sets it again.
            request.resolver_match = match
            scopes = set(meta["scopes"](view, request, **match.kwargs))
        except BaseException as exc:
            if checked is not None:
                # Refused (or failed) on a remembered snapshot that no lookup has
                # confirmed, and the user may have changed since: read the token's
                # entry again next time, not this snapshot.
                forget_caller(checked[0])
            if isinstance(exc, _Refused):
                return None
            raise
        if private:
            scopes.add(caller)  # "user:<id>", as serve_cached adds it
        names = sorted(scopes | {GENERATION_SCOPE})
        floors.begin()
        material = key_material(request, caller, names)
        started = time.perf_counter()
        try:
            if checked is None:
                found = backend().fast_lookup(endpoint, material, names, endpoint, if_none_match(request))
            else:
                found = backend().fast_lookup(endpoint, material, names, endpoint, if_none_match(request), checked)
                if found is None:  # the token's entry changed: DRF authenticates
                    forget_caller(checked[0])
                    return None
            fragment, locked, versions, key, tag = found
            # What response.serve_cached reports as the cache's own work (the bench reads it).
            request.cache_bookkeeping = {"lookup": round((time.perf_counter() - started) * 1000, 3)}
        except Exception as exc:  # noqa: BLE001 - the DRF path answers (and knows the cache is down)
            if not isinstance(exc, CacheUnavailable):
                health.failed("read", exc)
            return None
        if token is not None:
            # Confirmed (cached_caller's lookup, or this one's): a miss handed to
            # DRF does not query the token again.
            request.cache_caller = (token, user)
        if trace.current() is not None:
            trace.record_key(endpoint, caller, private, key, versions, material)
            if fragment is not None:
                trace.record(path="fast")
                trace.record_decision(trace.HIT)
        if fragment is None:
            request.cache_prelookup = {
                "endpoint": endpoint,
                "caller": caller,
                "key": key,
                "versions": versions,
                "lock_key": LOCK_PREFIX + key if locked else None,
                # None: unknown (or no replicas): the DRF path's build reads the primary.
                "floor": floors.current(),
            }
            return None
        response = self._response(request, endpoint, fragment, target["allow"], tag, private, signed_in=token is not None)
        return self._record(request, match, response)

    @staticmethod
    def _response(request, endpoint: str, fragment, allow: str, tag: str | None, private: bool, signed_in: bool):
        from django.http import HttpResponse

        if fragment is NOT_MODIFIED:
            # As the DRF path's 304: no body, no Content-Type.
            response = HttpResponse(status=304)
            del response["Content-Type"]
            response["Content-Length"] = "0"
        else:
            body = b'{"success":true,' + fragment + b"," + envelope_end()
            response = HttpResponse(body, content_type="application/json; charset=utf-8")
            response["Content-Length"] = str(len(body))
        response["X-Cache"] = "HIT"
        response["Allow"] = allow
        response["X-Frame-Options"] = getattr(settings, "X_FRAME_OPTIONS", "DENY")
        if tag is not None:
            response["ETag"] = etag_value(tag)
        if not signed_in:
            # The anonymous DRF path reads the session (SessionAuthentication):
            # Vary: Cookie. A token authenticates before the session is read.
            response["Vary"] = "Cookie"
        request.cache_status = "hit"
        CACHE_REQUESTS.labels(endpoint, "hit").inc()
        return response
