"""Query-string filters of the payment lists (django-filter, as every list:
core/filters.py). An invalid value is a 400 envelope."""
import django_filters

from .models import Payment, PaymentStatus


class PaymentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=PaymentStatus.choices)

    class Meta:
        model = Payment
        fields: list[str] = []
