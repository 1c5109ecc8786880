"""Cache scopes of the payments app: ``payments:user:<id>`` (that user's payment
lists, balance and the payments they can open) for payer and recipient."""
from accounts.cache import USERS
from core.signals import track

from .models import Payment


def payments_scope(user_id) -> str:
    return f"payments:user:{user_id}"


def payment_scopes(payment: Payment):
    return [payments_scope(payment.payer_id), payments_scope(payment.recipient_id)]


def my_payments_scopes(view, request, **kwargs):
    return [payments_scope(request.user.pk), USERS]


def user_payments_scopes(view, request, pk=None, **kwargs):
    # Staff may read another user's list: it depends on that user's payments.
    return [payments_scope(pk), USERS]


def balance_scopes(view, request, **kwargs):
    return [payments_scope(request.user.pk)]


track(Payment, payment_scopes)
