"""Serializers of the payments app. ``PaymentSerializer`` reads only the payment
row and the rows ``PaymentQuerySet.for_list`` joins (job, payer, recipient): it
never queries. Input serializers validate shape; the rules (whose job, which
worker, which currency) live in ``payments.services``."""
import re
from decimal import Decimal

from django.conf import settings
from rest_framework import serializers

from accounts.serializers import UserLiteSerializer, user_lite_repr
from core.converters import MAX_ID
from core.representation import Row, Rows, datetime_formatter, decimal_repr
from jobs.serializers import (
    JOB_AND_USERS_WIDTH,
    JobRefSerializer,
    job_and_users_columns,
    job_and_users_row,
    job_ref_repr,
)

from .models import Payment

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
# 1-255 printable ASCII characters (space allowed inside, not at the ends).
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?")


class PaymentSerializer(serializers.ModelSerializer):
    job = JobRefSerializer(read_only=True)
    payer = UserLiteSerializer(read_only=True)
    recipient = UserLiteSerializer(read_only=True)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True, coerce_to_string=True)

    class Meta:
        model = Payment
        fields = ["id", "job", "payer", "recipient", "amount", "currency", "status", "reference", "created_at"]
        read_only_fields = fields


def payment_repr(payment, datetime_repr=None) -> Row:
    """``PaymentSerializer(payment).data`` for a payment of ``PaymentQuerySet.for_list``
    (core/representation.py: the same bytes without DRF's per-field machinery)."""
    datetime_repr = datetime_repr or datetime_formatter()
    return Row(
        id=payment.id,
        job=job_ref_repr(payment.job),
        payer=user_lite_repr(payment.payer),
        recipient=user_lite_repr(payment.recipient),
        amount=decimal_repr(payment.amount, 2, 12),
        currency=payment.currency,
        status=payment.status,
        reference=payment.reference,
        created_at=datetime_repr(payment.created_at),
    )


def payment_rows(payments) -> Rows:
    """``PaymentSerializer(payments, many=True).data``."""
    datetime_repr = datetime_formatter()
    return Rows(payment_repr(payment, datetime_repr) for payment in payments)


# The columns ``payment_value_rows`` reads: the payment, its job ref and both users.
PAYMENT_VALUE_COLUMNS = (
    *job_and_users_columns("payer", "recipient"), "amount", "currency", "status", "reference", "created_at",
)


def payment_value_rows(values) -> Rows:
    """``PaymentSerializer(payments, many=True).data`` from ``values_list(
    *PAYMENT_VALUE_COLUMNS)`` tuples (a page of them): what ``payment_rows`` gives
    for the same payments of ``PaymentQuerySet.for_list``, without a Payment, a
    Job and two Users per row. The same one query."""
    datetime_repr = datetime_formatter()
    rows = Rows()
    for v in values:
        row = job_and_users_row(v, "payer", "recipient")
        amount, currency, status, reference, created_at = v[JOB_AND_USERS_WIDTH:]
        row.update(amount=decimal_repr(amount, 2, 12), currency=currency, status=status, reference=reference,
                   created_at=datetime_repr(created_at))
        rows.append(row)
    return rows


class PaymentCreateSerializer(serializers.Serializer):
    """``job, recipient, amount, currency``. Anything else in the body (status,
    payer, reference ...) is ignored: the server sets those."""

    job = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    recipient = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    currency = serializers.CharField(max_length=3, min_length=3)

    def validate_currency(self, value: str) -> str:
        value = value.upper()
        if value not in settings.CURRENCIES:
            raise serializers.ValidationError(f"Must be one of {', '.join(settings.CURRENCIES)}.")
        return value


def idempotency_key_from(request) -> str:
    """The request's ``Idempotency-Key`` header, validated (400 when missing or malformed)."""
    raw = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if raw is None or not raw.strip():
        raise serializers.ValidationError({IDEMPOTENCY_KEY_HEADER: ["This header is required."]})
    if not _IDEMPOTENCY_KEY.fullmatch(raw):
        raise serializers.ValidationError(
            {IDEMPOTENCY_KEY_HEADER: ["Must be 1-255 printable ASCII characters."]}
        )
    return raw


class CurrencyBalanceSerializer(serializers.Serializer):
    currency = serializers.CharField()
    paid_total = serializers.DecimalField(max_digits=None, decimal_places=2)
    received_total = serializers.DecimalField(max_digits=None, decimal_places=2)
    pending_total = serializers.DecimalField(max_digits=None, decimal_places=2)


class BalanceSerializer(CurrencyBalanceSerializer):
    """Totals in ``currency`` (the platform's first currency), plus ``by_currency``:
    the same totals for every currency the user has payments in."""

    by_currency = CurrencyBalanceSerializer(many=True)
