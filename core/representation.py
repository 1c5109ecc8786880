"""Fast representations: the JSON of the hot read endpoints without DRF's
per-field serializer machinery, byte for byte what their serializers give.

DRF serializes a list of 20 jobs by walking ~20 field objects per row (and the
nested serializers' fields per nested row), each with ``get_attribute``,
``to_representation`` and a ``ReturnDict``; on a cache miss that costs several
times what the database does. The hot endpoints instead read the loaded model
instances once ("attrs then serialize", in the style of Sentry's serializers): a
plain function per representation builds dicts of JSON primitives (str, int,
bool, None, list, dict), and the renderer writes them with orjson.

The DRF serializers stay the contract: they validate input, describe the schema
(drf-spectacular), and serve every non-JSON renderer (the browsable API). A test
(tests/core/test_representation.py) renders random rows both ways, unicode,
nulls, decimals and datetimes included, and compares the bytes.

What makes the bytes equal:
- ``datetime_repr`` / ``decimal_repr`` are DRF's ``DateTimeField`` /
  ``DecimalField.to_representation`` (ISO 8601 in the current time zone with
  ``Z`` for UTC; quantized to the field's places, ``f`` format), with DRF's own
  field as the fallback for any value outside the common case;
- ``dumps`` is orjson, whose output for those primitives is what DRF's
  ``JSONRenderer`` (compact separators, ``ensure_ascii=False``) writes, except
  that DRF escapes U+2028/U+2029: done here too.
"""
from __future__ import annotations

import datetime
import decimal
import zoneinfo

import orjson
from django.utils import timezone
from rest_framework import serializers
from rest_framework.settings import ISO_8601, api_settings

from .prepared import prepared_rows

_UTC = datetime.UTC
_UTC_ZONE = zoneinfo.ZoneInfo("UTC")  # zoneinfo caches it: Django's default zone is this object
_DRF_DATETIME = serializers.DateTimeField()
_LINE_SEPARATORS = (b"\xe2\x80\xa8", b"\xe2\x80\xa9")


class Rows(list):
    """A list of representations made only of JSON primitives: the envelope
    renderer writes it (and the pagination beside it) with ``dumps``."""


class Row(dict):
    """One representation made only of JSON primitives (see ``Rows``)."""


def dumps(data) -> bytes:
    """``data`` (JSON primitives only) as DRF's ``JSONRenderer`` writes it."""
    out = orjson.dumps(data)
    if _LINE_SEPARATORS[0] in out or _LINE_SEPARATORS[1] in out:
        out = out.replace(_LINE_SEPARATORS[0], b"\\u2028").replace(_LINE_SEPARATORS[1], b"\\u2029")
    return out


def lookup_queryset(view):
    """What ``view.get_object()`` reads, as a queryset: the view's filtered queryset
    narrowed to the object the URL names (empty when it does not exist or the view
    does not show it). No object permission is checked here: for views whose
    permissions have none (a detail read as plain values, a detail's row scopes)."""
    queryset = view.filter_queryset(view.get_queryset())
    lookup_url_kwarg = view.lookup_url_kwarg or view.lookup_field
    return queryset.filter(**{view.lookup_field: view.kwargs[lookup_url_kwarg]})


def lookup_values(view, *columns: str, limit: int | None = None) -> list:
    """``lookup_queryset(view).values_list(*columns)`` (the first ``limit`` rows),
    as a list of tuples. Where the view names the current action in
    ``static_lookup_actions`` (its queryset for that action depends on nothing
    but the URL's value: not the caller, not the query string), the SQL is
    compiled once and re-run with the URL's value (core/prepared.py); a test
    (tests/core/test_prepared.py) checks each such view compiles the same SQL
    for every caller. Otherwise the ORM reads it as usual."""
    lookup_url_kwarg = view.lookup_url_kwarg or view.lookup_field
    value = view.kwargs[lookup_url_kwarg]
    action = getattr(view, "action", None) or "retrieve"
    if type(value) is int and action in getattr(view, "static_lookup_actions", ()):
        def build(value):
            queryset = view.filter_queryset(view.get_queryset())
            queryset = queryset.filter(**{view.lookup_field: value}).prefetch_related(None).values_list(*columns)
            return queryset[:limit] if limit is not None else queryset

        return prepared_rows((type(view), action, columns, limit), build, (value,))
    queryset = lookup_queryset(view).prefetch_related(None).values_list(*columns)
    return list(queryset[:limit] if limit is not None else queryset)


def json_accepted(request) -> bool:
    """Whether DRF's content negotiation picked the JSON renderer (the browsable
    API and any other renderer get the DRF serializers' data)."""
    renderer = getattr(request, "accepted_renderer", None)
    return renderer is not None and renderer.format == "json"


def datetime_formatter():
    """``serializers.DateTimeField().to_representation``, resolved once per batch
    (the current time zone lives in a context-local: reading it per value costs
    more than the formatting)."""
    if api_settings.DATETIME_FORMAT != ISO_8601 or timezone.get_current_timezone() is not _UTC_ZONE:
        return _DRF_DATETIME.to_representation

    def in_utc(value):
        if type(value) is datetime.datetime and value.tzinfo is not None:
            # Aware, shown in UTC: DRF converts to the current zone and writes +00:00 as Z.
            return value.astimezone(_UTC).isoformat()[:-6] + "Z"
        return _DRF_DATETIME.to_representation(value)

    return in_utc


def datetime_repr(value):
    """``serializers.DateTimeField().to_representation(value)`` for one value."""
    return datetime_formatter()(value)


def prefetched(instance, name: str):
    """``getattr(instance, name).all()`` of a prefetched relation, without building
    a related manager and a queryset per row (what ``.all()`` costs)."""
    cache = getattr(instance, "_prefetched_objects_cache", None)
    if cache is not None and name in cache:
        return cache[name]
    return getattr(instance, name).all()


def decimal_repr(value, places: int, max_digits: int):
    """``serializers.DecimalField(max_digits, places).to_representation(value)``
    for a non-null value (null stays ``None``, as DRF's serializers write it)."""
    if value is None:
        return None
    if type(value) is decimal.Decimal and api_settings.COERCE_DECIMAL_TO_STRING:
        sign, digits, exponent = value.as_tuple()
        if exponent == -places and len(digits) <= max_digits:
            # Already at the field's places and within its precision (a value read
            # from the column): quantizing would not change it.
            return f"{value:f}"
    field = serializers.DecimalField(max_digits=max_digits, decimal_places=places)
    return field.to_representation(value)
