"""The query part of a response's key: what the cached handler reads from the
query string, in one spelling (docs/cache.md, "One resource, one cache identity").

The key holds the FilterSet's *cleaned* values rendered one way, the page number
and size as the paginator reads them, and nothing the handler does not read. A
query the FilterSet or the paginator refuses keeps its raw form (a 400, never stored).

The fast path and the DRF path call the same function; its result is kept per
(handler, raw query string) in a bounded per-process LRU (a hit pays a lookup),
and the cleaning per (handler, parameters it reads) in another one."""
from __future__ import annotations

import datetime
import functools
import string
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import QueryDict

# Longer query strings are not remembered (the LRUs stay within LRU_SIZE * this).
LRU_QUERY_CHARS = 512
LRU_SIZE = 2048


class Query:
    """What a cached handler reads from the query string, declared on
    ``@cached_response(query=Query(...))`` where it cannot be derived from the view:
    ``filterset`` (a FilterSet the handler applies itself), ``paginated`` (whether
    it pages with the view's paginator). Unset: derived from a GenericAPIView (its
    filter backends' ``filterset_class``; it pages unless it is a ``retrieve`` or
    has no paginator); a plain APIView's handler keeps its whole query."""

    def __init__(self, *, filterset=None, paginated: bool | None = None):
        self.filterset = filterset
        self.paginated = paginated


def get_handler_name(callback) -> str | None:
    """The handler a GET runs on a DRF view (``callback``: what the URL resolves
    to, ``match.func``): the viewset action mapped to ``get``, else ``get`` itself
    or the ``list``/``retrieve`` that DRF's generic ``get`` calls. ``None``: the
    view does not answer GET."""
    from rest_framework import generics

    actions = getattr(callback, "actions", None)
    if actions is not None:
        return actions.get("get")
    cls = callback.cls
    for base, name in ((generics.ListAPIView, "list"), (generics.RetrieveAPIView, "retrieve")):
        if issubclass(cls, base) and cls.get is base.get:
            return name
    return "get"


class Reader:
    """What one cached handler reads: its FilterSet's form fields (built once; a
    value is cleaned by the field, as the FilterSet's form does) and its paginator
    class (or ``None``)."""

    def __init__(self, filterset, pagination):
        self.filterset = filterset
        self.pagination = pagination
        # (name, form field, its widget, the raw parameters the widget reads, a set?,
        # compared without case?)
        self.fields = []
        if filterset is not None:
            form = filterset(data=QueryDict()).form
            for name, field in form.fields.items():
                widget = field.widget
                raw = {name} | {name + suffix for suffix in getattr(widget, "widgets_names", ())}
                filter_ = filterset.base_filters.get(name)
                self.fields.append((name, field, widget, frozenset(raw), _is_set(filter_),
                                    getattr(filter_, "lookup_expr", None) == "iexact"))
        read = set().union(*(f[3] for f in self.fields))
        if pagination is not None:
            read |= {pagination.page_query_param, pagination.page_size_query_param} - {None}
        self.read_names = frozenset(read)


def reader_for(callback) -> Reader | None:
    """The Reader of the cached handler a URL resolves to (``match.func``), or
    ``None`` for anything else (then the query is kept whole, sorted)."""
    try:
        return _readers[callback]
    except KeyError:
        pass
    except TypeError:  # an unhashable callback
        return None
    reader = _readers[callback] = _inspect(callback)
    return reader


_readers: dict = {}


def _inspect(callback) -> Reader | None:
    cls = getattr(callback, "cls", None)
    if cls is None:
        return None
    handler_name = get_handler_name(callback)
    meta = getattr(getattr(cls, handler_name or "", None), "cache_meta", None)
    if meta is None:
        return None
    declared = meta.get("query")
    if declared is None:
        from rest_framework.generics import GenericAPIView

        if not issubclass(cls, GenericAPIView):
            return None  # a plain APIView may read anything: the whole query is kept
        declared = Query()
    view = cls(**(getattr(callback, "initkwargs", None) or {}))
    view.action = handler_name
    filterset = declared.filterset
    if filterset is None:
        from django_filters.rest_framework import DjangoFilterBackend

        from ..filters import ListOnlyFilterMixin

        backends = getattr(view, "filter_backends", ())
        if any(isinstance(b, type) and issubclass(b, DjangoFilterBackend) for b in backends):
            if not (isinstance(view, ListOnlyFilterMixin) and handler_name != "list"):
                filterset = getattr(view, "filterset_class", None)
                if filterset is None and getattr(view, "filterset_fields", None):
                    return None  # a FilterSet built on the fly: keep the whole query
    paginated = declared.paginated
    pagination = getattr(view, "pagination_class", None)
    if paginated is None:
        paginated = pagination is not None and handler_name != "retrieve"
    return Reader(filterset, pagination if paginated else None)


def canonical_query(request) -> tuple:
    """The request's query as its handler reads it, in one spelling (a tuple of
    ``(name, values)``, sorted). ``request``: Django's or DRF's; its
    ``resolver_match`` names the handler (without one: the whole query, sorted)."""
    meta = request.META
    raw = meta.get("QUERY_STRING", "")
    if not raw:
        return ()
    match = getattr(request, "resolver_match", None)
    reader = reader_for(match.func) if match is not None else None
    if len(raw) > LRU_QUERY_CHARS:
        return _canonical(reader, raw)
    return _canonical_lru(reader, raw)


def query_filters(request) -> dict:
    """The FilterSet values the handler of ``request`` applies (name -> canonical
    value): empty when the query filters nothing (scope functions use it)."""
    match = getattr(request, "resolver_match", None)
    reader = reader_for(match.func) if match is not None else None
    if reader is None:
        return {n: v for n, v in canonical_query(request) if n not in ("page", "per_page")}
    names = {field[0] for field in reader.fields}
    return {n: v for n, v in canonical_query(request) if n in names}


@functools.lru_cache(maxsize=1)
def _extra_params() -> frozenset:
    """``RESPONSE_CACHE_KEY_EXTRA_PARAMS``: parameters kept in the key as sent
    although no handler reads them (the bench's cache-busting ``_b``)."""
    return frozenset(getattr(settings, "RESPONSE_CACHE_KEY_EXTRA_PARAMS", ()))


def _canonical(reader: Reader | None, raw: str) -> tuple:
    params = QueryDict(raw)
    if reader is None:
        return _whole(params)
    # Only what the handler reads goes on (a new value of an ignored parameter,
    # such as the bench's unique ``_b``, then costs no cleaning).
    read = reader.read_names
    relevant = tuple((name, tuple(params.getlist(name))) for name in sorted(params) if name in read)
    if sum(len(name) + sum(map(len, values)) for name, values in relevant) > LRU_QUERY_CHARS:
        out = _clean(reader, relevant)
    else:
        out = _clean_lru(reader, relevant)
    if out is None:
        return _whole(params)  # a 400: never stored; kept whole so that it shares nothing
    extra = _extra_params()
    if extra:
        out = tuple(sorted(out + tuple((name, tuple(values)) for name, values in params.lists() if name in extra)))
    return out


def _whole(params) -> tuple:
    return tuple(sorted((name, tuple(values)) for name, values in params.lists()))


def _clean(reader: Reader, relevant: tuple) -> tuple | None:
    """The canonical form of the parameters the handler reads (``relevant``: sorted
    ``(name, values)``), or ``None`` for a value the view refuses (a 400)."""
    params = QueryDict(mutable=True)
    for name, values in relevant:
        params.setlist(name, list(values))
    out = []
    for name, field, widget, raw_names, is_set, folds in reader.fields:
        if raw_names.isdisjoint(params):
            continue  # not sent: the field's empty value, which the filter skips
        try:
            # What the FilterSet's form does with the field (django.forms.Form._clean_fields).
            value = field.clean(widget.value_from_datadict(params, {}, name))
        except ValidationError:
            return None
        if folds and isinstance(value, str):  # iexact: ASCII case only (as SQLite folds)
            value = value.translate(_ASCII_LOWER)
        if is_set and isinstance(value, (list, tuple)):
            value = sorted(set(value), key=repr)  # a set of values (OR / IN): order and repeats do not matter
        rendered = _render(value)
        if rendered is not None:
            out.append((name, rendered))
    if reader.pagination is not None:
        pages = _pages(reader.pagination, params)
        if pages is None:
            return None
        out.extend(pages)
    return tuple(sorted(out))


_clean_lru = functools.lru_cache(maxsize=LRU_SIZE)(_clean)
_canonical_lru = functools.lru_cache(maxsize=LRU_SIZE)(_canonical)


def _pages(pagination, params) -> list | None:
    """``page`` and ``per_page`` as EnvelopePagination reads them (``int()`` of the
    last value; an empty size is the default); the defaults left out, a size above
    the maximum is the maximum. ``None``: a value the paginator refuses (a 400)."""
    out = []
    size_param = pagination.page_size_query_param
    for param, default, cap in (
        (pagination.page_query_param, 1, None),
        (size_param, pagination.page_size, pagination.max_page_size),
    ):
        raw = params.get(param) if param else None
        if raw is None or (raw == "" and param == size_param):
            continue
        try:
            number = int(raw)
        except (TypeError, ValueError):
            return None
        if number < 1:
            return None
        number = min(number, cap) if cap else number
        if number != default:
            out.append((param, str(number)))
    return out


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _is_set(filter_) -> bool:
    """A multiple choice or an ``__in`` list is a set (an ordering is not)."""
    import django_filters

    if isinstance(filter_, django_filters.OrderingFilter):
        return False
    return isinstance(filter_, (django_filters.MultipleChoiceFilter, django_filters.BaseInFilter))


def _render(value) -> str | None:
    """One spelling of a cleaned filter value; ``None``: one the filter ignores."""
    if value is None or value == "" or (isinstance(value, (list, tuple, dict)) and not value):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        if value == 0:
            return "0"
        return format(value.normalize(), "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.UTC).isoformat()  # one instant, one spelling
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(repr(_render(v)) for v in value) + "]"
    if isinstance(value, slice):  # RangeFilter
        return f"{_render(value.start)}..{_render(value.stop)}"
    pk = getattr(value, "pk", None)
    if pk is not None:
        return f"pk={pk}"
    return repr(value)


@receiver(setting_changed)
def _settings_changed(setting, **kwargs):
    if setting in ("RESPONSE_CACHE_KEY_EXTRA_PARAMS", "REST_FRAMEWORK", "ROOT_URLCONF"):
        _extra_params.cache_clear()
        _canonical_lru.cache_clear()
        _clean_lru.cache_clear()
        _readers.clear()
