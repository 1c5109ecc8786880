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
                 recall: bool = False):
        if not columns:
            raise ValueError("Rows needs at least one (scope prefix, column) pair")
        if recall and source is not None:
            raise ValueError("recall is for the view's own queryset (a static view), not a source method")
        self.columns = columns
        self.detail = detail
        self.source = source
        self.recall = recall
        # The columns the ids query reads, each once.
        self.names = tuple(dict.fromkeys(column for _, column in columns))

    def remembered(self, view, request, versions, **kwargs) -> list[str]:
        """``recall=True`` declares that the ids query's answer -- which rows, in
        which order, and the columns it reads -- changes only with a bump of one of
        the endpoint's coarse scopes: its rows are created and deleted under those
        scopes, its order is by columns that never change, and the columns it reads
        are fixed once written (a job's client, a review's job and users; the admin
        shows them read-only). Then the answer is a function of the coarse versions
        read in step 1 of the miss (docs/cache.md), and it is kept per process under
        them: a later miss of the same page under the same versions (its entry
        evicted or expired, or retired by a row scope -- a renamed client -- which
        moves no coarse scope) reuses it instead of querying again; any bump of a
        coarse scope (after the writer's commit) is a new key here too. Each version
        is kept with the counter it was read from (on a Redis Cluster each group
        keeps its own copy of every counter, with values of its own: cluster.py),
        and the global generation is one of them (``cache_invalidate --all``
        retires this memory as it retires every entry). Only for a static view
        (``core.representation.static_queryset``: no filter, the same rows for
        every caller); an empty answer (a 404, a page past the end) is not kept."""
        from ..representation import static_queryset
        from .backends import backend

        if not static_queryset(view):
            return self(view, request, **kwargs)
        window = None if self.detail else page_window(view)
        if not self.detail and window is None:
            return []
        b = backend()
        key = (type(view), getattr(view, "action", None), tuple(sorted(view.kwargs.items())), window,
               tuple((b.version_key(name), value) for name, value in sorted(versions.items())))
        known = _REMEMBERED.get(key)
        if known is None:
            known = tuple(self(view, request, **kwargs))
            if known:
                _remember(key, known)
        return list(known)

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
        extra += ", recall=True" if self.recall else ""
        return f"Rows({', '.join(map(repr, self.columns))}{extra})"


def row_scopes(rows, view, request, versions, kwargs) -> list[str]:
    """The row scopes of a miss (``@cached_response``'s ``rows``): a ``Rows`` that
    may recall them (``recall=True``) is given the coarse versions just read; any
    other ``rows`` callable runs."""
    if isinstance(rows, Rows) and rows.recall:
        return rows.remembered(view, request, versions, **kwargs)
    return rows(view, request, **kwargs)


# (view class, action, URL kwargs, page window, ((counter, version) of every coarse
# scope)) -> the row scopes of that answer (Rows.remembered). Bounded by the number of
# row scopes held (a page of 20 jobs names up to 40): cleared when it would go past.
_REMEMBERED: dict[tuple, tuple[str, ...]] = {}
_REMEMBERED_BUDGET = 100_000
_remembered_size = 0


def _remember(key, scopes: tuple[str, ...]) -> None:
    global _remembered_size
    if _remembered_size + len(scopes) > _REMEMBERED_BUDGET:
        _REMEMBERED.clear()
        _remembered_size = 0
    _REMEMBERED[key] = scopes
    _remembered_size += len(scopes)


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
