"""``Rows``: the row scopes of a cached endpoint, declared once, by columns.

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

from .response import page_rows


class Rows:
    """``Rows(("job", "id"), ("user", "client_id"))``: ``job:<id>`` and
    ``user:<client_id>`` of every row shown (``page_rows`` columns). Called as
    ``rows(view, request, **kwargs)`` by ``@cached_response``: 1 query on a miss."""

    def __init__(self, *columns: tuple[str, str], detail: bool = False, source: str | None = None):
        if not columns:
            raise ValueError("Rows needs at least one (scope prefix, column) pair")
        self.columns = columns
        self.detail = detail
        self.source = source

    def queryset(self, view):
        """The queryset the handler shows (before paging)."""
        if self.source is not None:
            return getattr(view, self.source)()
        queryset = view.filter_queryset(view.get_queryset())
        if self.detail:
            lookup_url_kwarg = view.lookup_url_kwarg or view.lookup_field
            queryset = queryset.filter(**{view.lookup_field: view.kwargs[lookup_url_kwarg]})
        return queryset

    def __call__(self, view, request, **kwargs) -> Iterable[str]:
        from rest_framework.exceptions import ValidationError

        try:
            queryset = self.queryset(view)
        except ValidationError:
            return []  # the build answers the 400; nothing is stored
        return page_rows(view, queryset, *self.columns, paged=not self.detail)

    def __repr__(self) -> str:
        extra = ", detail=True" if self.detail else f", source={self.source!r}" if self.source else ""
        return f"Rows({', '.join(map(repr, self.columns))}{extra})"
