"""Query-string filters of ``GET /reviews/`` (django-filter, as every list:
core/filters.py): ``?reviewed=``, ``?reviewer=``, ``?job=`` ids, combined (AND).
An invalid value (not a whole number, outside 1..2**63-1) is a 400 envelope."""
import django_filters

from core.filters import BoundedIntegerFilter

from .models import Review


class ReviewFilter(django_filters.FilterSet):
    reviewed = BoundedIntegerFilter(field_name="reviewed_id")
    reviewer = BoundedIntegerFilter(field_name="reviewer_id")
    job = BoundedIntegerFilter(field_name="job_id")

    class Meta:
        model = Review
        fields: list[str] = []
