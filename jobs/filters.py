"""Query-string filters of the job and application lists (django-filter).

An invalid value (unknown status, non-numeric rate, unknown ordering) makes the
FilterSet invalid, which DRF's backend answers with a 400 envelope, never a 500.
Numbers are bounded so that no value can overflow a database integer.
"""
import django_filters
from django.db.models import Q

from core.converters import MAX_ID
from core.filters import BoundedIntegerFilter

from .models import Application, ApplicationStatus, Job, JobStatus


class StableOrderingFilter(django_filters.OrderingFilter):
    """The requested ordering, then ``-id`` so that pages never overlap or skip rows."""

    def filter(self, qs, value):
        if value in django_filters.constants.EMPTY_VALUES:
            return qs
        return qs.order_by(*[self.get_ordering_value(param) for param in value], "-id")


class JobFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=JobStatus.choices)
    category = django_filters.CharFilter(method="filter_category", max_length=100)
    skill = django_filters.CharFilter(field_name="skills__slug", max_length=64)
    city = django_filters.CharFilter(field_name="city", lookup_expr="iexact", max_length=100)
    min_rate = django_filters.NumberFilter(field_name="rate", lookup_expr="gte", max_digits=10, decimal_places=2)
    max_rate = django_filters.NumberFilter(field_name="rate", lookup_expr="lte", max_digits=10, decimal_places=2)
    search = django_filters.CharFilter(method="filter_search", max_length=200)
    client = BoundedIntegerFilter(field_name="client_id")
    ordering = StableOrderingFilter(fields=("created_at", "rate", "start_at"))

    class Meta:
        model = Job
        fields: list[str] = []

    def filter_category(self, queryset, name, value):
        """A category id (digits) or slug."""
        if value.isascii() and value.isdigit():  # not "²", which isdigit() but int() refuses
            pk = int(value)
            return queryset.filter(category_id=pk) if pk <= MAX_ID else queryset.none()
        return queryset.filter(category__slug=value)

    def filter_search(self, queryset, name, value):
        """Title or description contains the text (case-insensitive)."""
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(title__icontains=value) | Q(description__icontains=value))


class ApplicationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ApplicationStatus.choices)

    class Meta:
        model = Application
        fields: list[str] = []
