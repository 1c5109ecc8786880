"""``Rows``: the row scopes of a cached endpoint, declared once, by columns; and
``page_rows``, the cheap ids query that reads them for one page.

A cached list or detail names the rows it shows (docs/cache.md, "Row scopes").
Those rows must be the ones the handler shows: the same filters, order and page.
So they are never typed a second time: ``Rows`` reads them from the view's own
queryset, the one the handler renders:

- by default ``view.filter_queryset(view.get_queryset())`` (the view's named
  queryset and its FilterSet), paged like the response;
- ``detail=True``: the one object the view's lookup names in that queryset (what
  ``get_object()`` reads; empty when the caller may not see it, and the build then
  answers the 404 and stores nothing);
- ``source="method"``: ``view.method()``, for a handler whose rows are not the
  view's own model (a job's applications), which the handler calls too.

An invalid filter value gives no rows: the build answers the same 400 and nothing
is stored (as ``page_rows`` does for an invalid page)."""
from __future__ import annotations

from collections.abc import Iterable


class Rows:
    """``Rows(("job", "id"), ("user", "client_id"))``: ``job:<id>`` and
    ``user:<client_id>`` of every row shown (``page_rows`` columns). Called as
    ``rows(view, request, **kwargs)`` by ``@cached_response``: 1 query on a miss."""

    def __init__(self, *columns: tuple[str, str], detail: bool = False, source: str | None = None,
                 own_scope: str | None = None):
        if not columns:
            raise ValueError("Rows needs at least one (scope prefix, column) pair")
        if own_scope is not None and not detail:
            raise ValueError("own_scope is for a detail (its object's own row scope is a coarse scope)")
        self.columns = columns
        self.detail = detail
        self.source = source
        self.own_scope = own_scope
        # The columns the ids query reads, each once.
        self.names = tuple(dict.fromkeys(column for _, column in columns))

    def remembered(self, view, request, versions, **kwargs) -> list[str]:
        """``own_scope="job"``: the endpoint's coarse scopes include the object's own
        row scope (``job:<id>``), so the columns this reads from that row cannot
        change without that scope being bumped, after the writer's commit. The
        answer of the ids query is therefore kept per process under the version of
        that scope read before it ran (step 1 of a miss, docs/cache.md), together
        with the counter it was read from and the global generation: a later
        miss that reads the same version (a new key for the same object: another
        spelling of its URL, an entry evicted or expired) reuses it instead of
        querying again, and any write to the row, which bumps the scope, retires
        it. Only for a static view (``core.representation.static_queryset``: the
        answer depends on the URL's id alone, not on the caller)."""
        from ..representation import static_queryset
        from .backends import backend
        from .keys import GENERATION_SCOPE

        lookup = view.lookup_url_kwarg or view.lookup_field
        pk = view.kwargs.get(lookup)
        scope = f"{self.own_scope}:{pk}"
        version = versions.get(scope)
        if version is None or not static_queryset(view):
            return self(view, request, **kwargs)
        # The counter as the backend names it: on a Redis Cluster each group keeps its
        # own copy of every counter, with values of its own (cluster.py), so a value
        # means something only together with the copy it was read from.
        # And under the global generation: ``cache_invalidate --all`` (and the outage
        # fence) retire this memory as they retire every entry.
        key = (type(view), getattr(view, "action", None), pk, backend().version_key(scope), version,
               versions.get(GENERATION_SCOPE))
        known = _REMEMBERED.get(key)
        if known is None:
            known = list(self(view, request, **kwargs))
            if len(_REMEMBERED) >= _REMEMBERED_MAX:
                _REMEMBERED.clear()
            _REMEMBERED[key] = known
        return known

    def queryset(self, view):
        """The queryset the handler shows (before paging)."""
        from ..representation import lookup_queryset

        if self.source is not None:
            return getattr(view, self.source)()
        if self.detail:
            return lookup_queryset(view)
        return view.filter_queryset(view.get_queryset())

    def __call__(self, view, request, **kwargs) -> Iterable[str]:
        from rest_framework.exceptions import ValidationError

        if self.detail and self.source is None:
            from ..representation import lookup_values

            # What get_object() reads, narrowed to the row-scope columns (a prepared
            # read where the view's lookup queryset is static: core/prepared.py).
            try:
                return scopes_of(self.names, lookup_values(view, *self.names), self.columns)
            except ValidationError:
                return []  # the build answers the 400; nothing is stored
        if not self.detail and self.source is None:
            from ..representation import static_queryset, view_rows

            if static_queryset(view):
                window = page_window(view)
                if window is None:
                    return []
                offset, size = window
                names = self.names

                def make(view):
                    return _window(view.filter_queryset(view.get_queryset()).prefetch_related(None).values_list(*names),
                                   offset, size)

                return scopes_of(names, view_rows(view, ("rows", names, offset, size), make), self.columns)
        try:
            queryset = self.queryset(view)
        except ValidationError:
            return []  # the build answers the 400; nothing is stored
        return page_rows(view, queryset, *self.columns, paged=not self.detail)

    def __repr__(self) -> str:
        extra = ", detail=True" if self.detail else f", source={self.source!r}" if self.source else ""
        extra += f", own_scope={self.own_scope!r}" if self.own_scope else ""
        return f"Rows({', '.join(map(repr, self.columns))}{extra})"


def row_scopes(rows, view, request, versions, kwargs) -> list[str]:
    """The row scopes of a miss (``@cached_response``'s ``rows``): a ``Rows`` that
    may recall them (``own_scope``) is given the coarse versions just read; any
    other ``rows`` callable runs."""
    if isinstance(rows, Rows) and rows.own_scope is not None:
        return rows.remembered(view, request, versions, **kwargs)
    return rows(view, request, **kwargs)


# (view class, action, id, its own scope's counter, that counter's value, the generation)
# -> its row scopes (Rows.remembered).
_REMEMBERED: dict[tuple, list[str]] = {}
_REMEMBERED_MAX = 8192


def page_rows(view, queryset, *columns: tuple[str, str], paged: bool = True) -> list[str]:
    """The row scopes of the page ``view`` will show from ``queryset``: the cheap
    ids query (1 query: the same filters, order and slice as the page, only the
    named columns, no joins). ``columns`` pairs a scope prefix with a column, e.g.
    ``("job", "id"), ("user", "client_id")`` -> ``job:<id>``, ``user:<client_id>``
    for every row of the page. A page number or size the paginator refuses gives
    no rows (the build then answers the same 400 and nothing is stored).
    ``paged=False``: every row of ``queryset`` (a detail: one row)."""
    window = page_window(view) if paged else (0, None)
    if window is None:
        return []
    offset, size = window
    names = list(dict.fromkeys(column for _, column in columns))
    return scopes_of(names, _window(queryset.prefetch_related(None).values_list(*names), offset, size), columns)


def _window(rows, offset: int, size: int | None):
    """``rows`` from ``offset``, ``size`` of them (None: all)."""
    return rows[offset : offset + size] if size else rows[offset:]


def page_window(view) -> tuple[int, int | None] | None:
    """(offset, size) of the page ``view`` will show (size None: every row, the
    view has no paginator), or None for a page number or size the paginator
    refuses (the build then answers the same 400 or 404 and nothing is stored)."""
    paginator = view.paginator
    if paginator is None:
        return 0, None
    request = view.request
    try:
        size = paginator.get_page_size(request)
        number = int(request.query_params.get(paginator.page_query_param, "1"))
    except Exception:  # noqa: BLE001 - the build reports it
        return None
    if number < 1:
        return None
    offset = (number - 1) * size
    # A page past what the paginator counts (it stops at count_cap) is a 404
    # anyway; never hand the database an OFFSET beyond its integer range.
    if offset > getattr(paginator, "count_cap", offset):
        return None
    return offset, size


def scopes_of(names, rows, columns) -> list[str]:
    """The row scopes (``prefix:value``, sorted) of ``rows`` (tuples of ``names``)."""
    out = set()
    for row in rows:
        values = dict(zip(names, row))
        for prefix, column in columns:
            if values[column] is not None:
                out.add(f"{prefix}:{values[column]}")
    return sorted(out)
