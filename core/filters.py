"""Query-string filtering, one style for every list: a django-filter FilterSet on
the view (``filterset_class``), applied by ``FilterBackend`` (DRF's
``DjangoFilterBackend``) in ``filter_queryset``. An invalid value makes the
FilterSet invalid: a 400 envelope, never a 500. The rows a cached list validates
come from the same ``filter_queryset(get_queryset())`` (``core.cache.Rows``)."""
import functools

import django_filters
from django import forms
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from .converters import MAX_ID


@extend_schema_field(OpenApiTypes.INT)
class BoundedIntegerFilter(django_filters.NumberFilter):
    """An exact id (``forms.IntegerField`` within 1..2**63-1: no value can overflow
    a database integer)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class ListOnlyFilterMixin:
    """For viewsets: query-string filters apply to the list only, so ``?status=`` on
    a detail URL or an action neither hides the object nor turns into a 400."""

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        return super().filter_queryset(queryset)


@functools.cache
def _param_filters(filterset_class) -> tuple[tuple[str, object], ...] | None:
    """(name, widget) of each filter of ``filterset_class``, or None when one of them
    is required (then the FilterSet must always run: an absent value is a 400).
    Built once per class: a filter's form field is made once and kept."""
    out = []
    for name, filter_ in filterset_class.base_filters.items():
        if filter_.extra.get("required"):
            return None
        out.append((name, filter_.field.widget))
    return tuple(out)


def filterset_applies(filterset_class, params) -> bool:
    """Whether the query string ``params`` gives any of ``filterset_class``'s
    filters a value. When none is given, the FilterSet would filter nothing (every
    filter skips an empty value, the form is valid) and return the queryset as
    it is: the FilterSet (a deep copy of every filter and a form) need not be built."""
    filters = _param_filters(filterset_class)
    if filters is None or not params:
        return filters is None
    return any(not widget.value_omitted_from_data(params, {}, name) for name, widget in filters)


class FilterBackend(DjangoFilterBackend):
    """``DjangoFilterBackend`` that leaves the queryset alone, without building the
    FilterSet, when the query names none of its filters (``filterset_applies``): a
    plain list page is filtered twice per cache miss (the row scopes, then the
    build), each time a FilterSet with a deep copy of every filter."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = getattr(view, "filterset_class", None)
        if filterset_class is not None and not getattr(view, "filterset_fields", None):
            if not filterset_applies(filterset_class, request.query_params):
                return queryset
        return super().filter_queryset(request, queryset, view)
