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
from django.db import models
from django.db.models import Subquery
from django.utils import timezone
from rest_framework import serializers
from rest_framework.settings import ISO_8601, api_settings

from .filters import FilterBackend, ListOnlyFilterMixin, filterset_applies
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


def static_queryset(view) -> bool:
    """Whether ``view``'s queryset for this request may be read prepared
    (core/prepared.py): the view names the handler (its action, or for a view
    without actions the method, ``get``) in ``static_queryset_for`` -- a promise
    that ``view.get_queryset()`` for it depends on nothing but the URL's
    arguments, not the caller and not the query string -- every URL argument is
    an id, and no filter applies (the query string gives none of the FilterSet's
    filters a value; any other filter backend counts as applying). A test
    (tests/core/test_prepared.py) checks each such view compiles the same SQL for
    every caller and query string."""
    handler = getattr(view, "action", None) or view.request.method.lower()
    if handler not in getattr(view, "static_queryset_for", ()):
        return False
    if any(type(value) is not int for value in view.kwargs.values()):
        return False
    if getattr(view, "action", None) not in (None, "list") and isinstance(view, ListOnlyFilterMixin):
        return True  # filters apply to the list only
    for backend in view.filter_backends:
        if backend is not FilterBackend or getattr(view, "filterset_fields", None):
            return False
        filterset_class = getattr(view, "filterset_class", None)
        if filterset_class is not None and filterset_applies(filterset_class, view.request.query_params):
            return False
    return True


def view_rows(view, key, make_queryset, on_compile=None) -> list:
    """The rows of ``make_queryset(view)`` (a ``values_list`` of the view's queryset),
    for a view where ``static_queryset(view)``: compiled once per ``key`` with the
    URL's arguments as its parameters (the view's ``kwargs`` are sentinels while
    it compiles), then re-run with this request's. The first time, the statement
    with this request's values put in is checked to be the one
    ``make_queryset(view)`` compiles to (else ``ValueError``, nothing kept): a
    value that did not land where the sentinels said fails there, not later."""
    names = tuple(sorted(view.kwargs))

    def checked(sql, params):
        expected = make_queryset(view).query.sql_with_params()
        if (sql, params) != expected:
            raise ValueError(f"{type(view).__name__}: the prepared statement is not the queryset's")
        if on_compile is not None:
            on_compile(sql, params)

    def build(*values):
        kept = view.kwargs
        view.kwargs = dict(zip(names, values))
        try:
            return make_queryset(view)
        finally:
            view.kwargs = kept

    handler = getattr(view, "action", None) or view.request.method.lower()
    return prepared_rows((type(view), handler, key, names), build, tuple(view.kwargs[n] for n in names),
                         on_compile=checked)


def lookup_values(view, *columns: str, order_by: tuple[str, ...] = ()) -> list:
    """``lookup_queryset(view).values_list(*columns)`` (ordered by ``order_by`` when
    given), as a list of tuples: prepared where ``static_queryset(view)``, else
    through the ORM as usual. A column across a many-to-many relation
    (``skills__name``) gives one row per related row, in ``order_by``'s order: a
    detail and its skills in one query."""
    def make(view):
        queryset = lookup_queryset(view).prefetch_related(None).values_list(*columns)
        return queryset.order_by(*order_by) if order_by else queryset

    if static_queryset(view):
        return view_rows(view, ("lookup", columns, order_by), make)
    return list(make(view))


def view_page_values(view, queryset, *columns: str):
    """``values_page(queryset, *columns)`` for the page ``view`` shows, where
    ``queryset`` is ``view.filter_queryset(view.get_queryset())``: for a static
    view (``static_queryset``) the page's slice is read prepared; the first time a
    slice is compiled, its SQL and parameters are checked to be those of
    ``queryset``'s own slice (else ``ValueError``: the handler shows another
    queryset than the view's)."""
    if not static_queryset(view):
        from .envelope import values_page

        return values_page(queryset, *columns)
    return PreparedPage(view, queryset, columns)


class PreparedPage:
    """A page's plain row values for the paginator (core/envelope.py): counted on
    ``count_source`` as ``values_page`` is, sliced through ``view_rows``."""

    def __init__(self, view, queryset, columns):
        self.view = view
        self.count_source = queryset
        self.columns = columns
        self.ordered = queryset.ordered

    def __getitem__(self, window: slice) -> list:
        from .envelope import page_values

        bottom, top = window.start or 0, window.stop
        columns = self.columns

        def make(view):
            return page_values(view.filter_queryset(view.get_queryset()), columns, bottom, top)

        def same_as_handlers(sql, params):
            expected = page_values(self.count_source, columns, bottom, top)
            if (sql, params) != expected.query.sql_with_params():
                raise ValueError(f"{type(self.view).__name__}: the page's queryset is not the view's own")

        return view_rows(self.view, ("page", columns, bottom, top), make, on_compile=same_as_handlers)


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


class _NameListField(models.Field):
    """The value of a ``NameList`` column: a list of str."""

    def from_db_value(self, value, expression, connection):
        if value is None:
            return []
        if isinstance(value, str):  # SQLite: a JSON array, in no promised order
            return sorted(orjson.loads(value))
        return value


class NameList(Subquery):
    """A correlated subquery of one text column (``values(column)``, ordered by it)
    as one column of the outer row: the list of its values, in that order. So a
    page of rows and each row's related names (a job's skills) are one query, not
    a query for the page and another for the names.

    PostgreSQL: ``ARRAY(subquery)``, a ``text[]`` in the subquery's order. SQLite
    (development, the first CI pass): ``json_group_array`` of the subquery's rows,
    sorted here by code point, which is SQLite's default (``BINARY``) order of
    ``ORDER BY column``. A prepared read (core/prepared.py) carries it as a
    column after the plain ones. Read a page of such rows with
    ``core.envelope.page_values``, which gives it only the page's rows."""

    output_field = _NameListField()

    def __init__(self, queryset, column: str):
        self.column = column
        super().__init__(queryset.values(column).order_by(column))

    def as_postgresql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="ARRAY(%(subquery)s)", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        name = connection.ops.quote_name(self.column)
        template = f"(SELECT json_group_array({name}) FROM (%(subquery)s))"
        return super().as_sql(compiler, connection, template=template, **extra)
