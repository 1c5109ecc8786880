"""What a GET to a URL would depend on, for ``manage.py cache_explain``: the
endpoint, its coarse scopes and their versions, the response key, the entry and
its row header against the current counters, and HIT or why not.

It resolves the URL through the URLconf and asks the same functions as the
response cache (``caller_scopes``, ``response_key``, the validated
``lookup``), so it cannot disagree with it. Read only: counters are peeked, not
created; the lookup neither counts nor takes the rebuild lock; throttles are not
run (they write to the cache). Only the ids query of the endpoint's rows runs
(a database read)."""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .backends import backend
from .dispatch import get_handler_name, make_view
from .identity import caller_scopes, endpoint_name, json_renderer_accepted, select_group
from .keys import GENERATION_SCOPE, decode_entry, response_key

# The verdict words and reasons the Debug Toolbar panel uses too.
from .trace import BYPASS, HIT, MISS, NO_ENTRY, NOT_CACHED, ROW_CHECK_FAILED

# How many earlier versions of each coarse scope to try when no entry exists
# under the current ones (to tell "bumped since" from "never built / expired").
LOOK_BACK = 20



@dataclass
class Explanation:
    url: str
    verdict: str = NOT_CACHED
    reason: str = ""
    endpoint: str | None = None
    caller: str | None = None
    private: bool = False
    scopes: dict[str, str | None] = field(default_factory=dict)  # coarse scope -> version
    key: str | None = None
    entry: bool = False
    entry_ttl: int | None = None
    header: list[tuple[str, str, str | None]] = field(default_factory=list)  # (scope, stored, current)
    rows_now: dict[str, str | None] | None = None  # row scopes a build now would record
    rows_error: str | None = None  # the ids query failed (the request would fail too)

    def lines(self) -> list[str]:
        out = [f"url:       {self.url}"]
        if self.endpoint:
            kind = f"private, caller {self.caller}" if self.private and self.caller else "private" if self.private else "public"
            out.append(f"endpoint:  {self.endpoint} ({kind})")
        if self.scopes:
            out.append("coarse scopes (part of the key):")
            out += [f"  {name:<32} {'(no counter)' if v is None else v}" for name, v in self.scopes.items()]
        if self.key:
            out.append(f"key:       {self.key}")
            ttl = "" if self.entry_ttl is None else f", expires in {self.entry_ttl} s"
            out.append(f"entry:     {'exists' + ttl if self.entry else 'none'}")
        if self.header:
            out.append("row header (stored -> current):")
            for scope, stored, current in self.header:
                mark = "ok" if stored == current else "CHANGED"
                out.append(f"  {scope:<32} {stored} -> {'(no counter)' if current is None else current}  {mark}")
        elif self.entry:
            out.append("row header: none (no row scopes)")
        if self.rows_now is not None:
            out.append(f"rows a build now would record ({len(self.rows_now)}):")
            out += [f"  {s:<32} {'(no counter)' if v is None else v}" for s, v in self.rows_now.items()]
        if self.rows_error:
            out.append(f"rows: the ids query failed: {self.rows_error}")
        out.append(f"verdict:   {self.verdict}" + (f": {self.reason}" if self.reason else ""))
        return out


def explain(url: str, user=None) -> Explanation:
    """Explain a GET to ``url`` (a path or full URL, query string included) made
    by ``user`` (``None``: anonymous)."""
    from django.contrib.auth.models import AnonymousUser
    from django.http import Http404
    from django.test import RequestFactory
    from django.urls import Resolver404, resolve
    from rest_framework.exceptions import APIException
    from rest_framework.request import ForcedAuthentication

    parts = urlsplit(url)
    path = parts.path or "/"
    out = Explanation(url=path + (f"?{parts.query}" if parts.query else ""))
    django_request = RequestFactory().get(out.url, HTTP_ACCEPT="application/json")
    django_request.user = user or AnonymousUser()
    try:
        match = resolve(path)
    except Resolver404:
        out.reason = "no such URL (404)"
        return out
    django_request.resolver_match = match  # the key names the resource by its route (keys.path_identity)
    cls = getattr(match.func, "cls", None)
    handler_name = get_handler_name(match.func) if cls is not None else None
    meta = getattr(getattr(cls, handler_name, None), "cache_meta", None) if handler_name else None
    if meta is None:
        out.reason = "not a cached endpoint (no @cached_response on the handler a GET runs)"
        return out
    out.endpoint, out.private = endpoint_name(cls, meta["name"]), meta["private"]

    view = make_view(match, cls, django_request)
    request = view.initialize_request(django_request, *match.args, **match.kwargs)
    if user is not None:  # anonymous: the view's own authenticators find no credentials
        request.authenticators = (ForcedAuthentication(user, None),)
    view.request = request
    view.check_throttles = lambda request: None  # a throttle check writes to the cache
    try:
        view.initial(request, *match.args, **match.kwargs)  # negotiation, auth, permissions
    except APIException as exc:
        out.reason = f"refused for this caller ({exc.status_code}: {exc.detail}); nothing is cached for it"
        return out
    except Http404:
        out.reason = "answered 404 before the cache is asked (e.g. an unknown ?format=)"
        return out
    if not json_renderer_accepted(request):
        out.reason = "the response would not be JSON; only JSON is cached"
        return out

    out.caller, scopes = caller_scopes(request, meta["scopes"](view, request, **match.kwargs), meta["private"])
    names = sorted(scopes | {GENERATION_SCOPE})
    row_scopes = None
    try:
        select_group(request, out.caller, scopes)  # a cluster: the group of this response's keys
    except Exception as exc:  # noqa: BLE001
        out.verdict, out.reason = BYPASS, f"cache unavailable ({exc!r})"
        return out
    if meta["rows"] is not None:
        try:
            row_scopes = sorted(set(meta["rows"](view, request, **match.kwargs)) - set(names))
        except Exception as exc:  # noqa: BLE001 - the real request would fail the same way
            out.rows_error = repr(exc)
    b = backend()
    try:
        current = dict(zip(names, b.peek([b.version_key(n) for n in names])))
        out.scopes = current
        missing = [n for n in names if current[n] is None]
        if missing:
            out.verdict = MISS
            out.reason = (
                f"no counter for {', '.join(missing)}: the next request creates it from the clock, "
                "so no older entry can match (nothing was built since it expired or was evicted)"
            )
        else:
            versions = {n: int(v) for n, v in current.items()}
            out.key = response_key(out.endpoint, request, versions, out.caller)
            _entry(out, b, request, versions)
        if row_scopes is not None:
            out.rows_now = dict(zip(row_scopes, b.peek([b.version_key(s) for s in row_scopes])))
    except Exception as exc:  # noqa: BLE001 - any cache failure
        out.verdict = BYPASS
        out.reason = f"cache unavailable ({exc!r}): the request would be answered from the database"
    return out


def _entry(out: Explanation, b, request, versions: dict[str, int]) -> None:
    """Fill in the entry, its row header and the verdict for the key ``out.key``."""
    raw = b.get(out.key)
    out.entry = raw is not None
    if raw is not None:
        out.entry_ttl = b.ttl(out.key)
        rows, _ = decode_entry(raw)
        strip = len(b.version_key(""))
        counters = sorted(rows)
        now = b.peek(counters)
        out.header = [(key[strip:], rows[key], value) for key, value in zip(counters, now)]
    fragment, _, _ = b.lookup(out.key, None, None)  # the response cache's own check; no count, no lock
    if fragment is not None:
        out.verdict, out.reason = HIT, ""
        return
    out.verdict = MISS
    if raw is not None:
        changed = [scope for scope, stored, current in out.header if stored != current]
        out.reason = ROW_CHECK_FAILED.format(scopes=", ".join(changed) or "a row counter")
        return
    for name in versions:
        for back in range(1, LOOK_BACK + 1):
            older = dict(versions, **{name: versions[name] - back})
            if b.get(response_key(out.endpoint, request, older, out.caller)) is not None:
                what = "the global generation (*)" if name == GENERATION_SCOPE else name
                out.reason = f"coarse scope bumped: {what} bumped {back} time(s) since the entry was stored"
                return
    out.reason = NO_ENTRY
