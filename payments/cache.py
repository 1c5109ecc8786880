"""Cache scopes of the payments app.

Coarse scopes: ``payments:user:<id>`` (that user's payment lists and balance;
bumped for payer and recipient by any payment change: membership, status,
order) and ``payment:<id>`` (one payment's detail, which staff can read too, so
it cannot hang on the payer's and recipient's scopes alone).

Row scopes (docs/cache.md, "Coarse scopes and row scopes"): every payment
representation embeds the job and both users, so lists and details name
``job:<job_id>``, ``user:<payer_id>`` and ``user:<recipient_id>`` of every payment
shown. What each GET depends on is declared on its handler (payments/views.py);
this module says what a change to a payment touches.
"""
from core.signals import track

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


track(Payment, payment_scopes)
