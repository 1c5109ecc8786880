"""Query-string filtering, one style for every list: a django-filter FilterSet on
the view (``filterset_class``), applied by DRF's ``DjangoFilterBackend`` in
``filter_queryset``. An invalid value makes the FilterSet invalid: a 400 envelope,
never a 500. The rows a cached list validates come from the same
``filter_queryset(get_queryset())`` (``core.cache.Rows``)."""
import django_filters
from django import forms
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
