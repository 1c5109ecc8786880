"""Cache scopes of the payments app.

Scopes: ``payments:user:<id>`` (that user's payment lists and balance; bumped for
payer and recipient) and ``payment:<id>`` (one payment's detail, which staff can
read too, so it cannot hang on the payer's and recipient's scopes alone).

Every payment representation embeds the job (id, title, status) and both users
(names, rating): lists and details also depend on ``jobs`` and ``users``, so a
job moving to ``completed`` or a new rating shows at once. Every payment
response is private (``private=True``): the response cache keys it by caller and
adds ``user:<caller>`` itself.
"""
from accounts.cache import USERS
from core.signals import track
from jobs.cache import JOBS

from .models import Payment


def payments_scope(user_id) -> str:
    return f"payments:user:{user_id}"


def payment_scope(payment_id) -> str:
    return f"payment:{payment_id}"


def payment_scopes(payment: Payment):
    return [
        payment_scope(payment.pk),
        payments_scope(payment.payer_id),
        payments_scope(payment.recipient_id),
    ]


def my_payments_scopes(view, request, **kwargs):
    return [payments_scope(request.user.pk), USERS, JOBS]


def payment_detail_scopes(view, request, pk=None, **kwargs):
    return [payment_scope(pk), USERS, JOBS]


def user_payments_scopes(view, request, pk=None, **kwargs):
    # Staff may read another user's list: it depends on that user's payments.
    return [payments_scope(pk), USERS, JOBS]


def balance_scopes(view, request, **kwargs):
    # Totals only: no names, no job titles.
    return [payments_scope(request.user.pk)]


track(Payment, payment_scopes)
