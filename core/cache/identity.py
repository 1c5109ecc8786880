"""Who and what a cached response is for: the endpoint's name, the caller part of
the key with the coarse scopes it adds, the Redis Cluster group of its keys, and
whether the response is one the cache stores (JSON only). Shared by the response
cache, the fast path and ``cache_explain``."""
from __future__ import annotations

from collections.abc import Iterable

from .backends import backend
from .keys import GENERATION_SCOPE, key_material


def endpoint_name(view_class, handler_name: str) -> str:
    """How metrics, stats and keys name a cached handler: ``<ViewClass>.<handler>``."""
    return f"{view_class.__name__}.{handler_name}"


def caller_scopes(request, scopes: Iterable[str], private: bool) -> tuple[str, set[str]]:
    """The caller part of the key and the coarse scopes: a private entry is keyed
    by the caller and also depends on ``user:<id>``."""
    scopes = set(scopes)
    caller = "public"
    if private:
        user = request.user
        caller = f"user:{user.pk}" if user.is_authenticated else "anon"
        if user.is_authenticated:
            scopes.add(f"user:{user.pk}")
    return caller, scopes


def select_group(request, caller: str, scopes: Iterable[str]) -> None:
    """On a Redis Cluster: pick the group (hash tag) of this response's keys
    (cluster.py); a no-op on one Redis or local memory."""
    if backend().grouped:
        backend().select_group(key_material(request, caller, sorted(set(scopes) | {GENERATION_SCOPE})))


def json_renderer_accepted(request) -> bool:
    """Only JSON responses are cached (not the browsable API, not ?format=...)."""
    renderer = getattr(request, "accepted_renderer", None)
    return renderer is not None and renderer.format == "json"
