"""Cache scopes of the payments app.

Coarse scopes: ``payments:user:<id>`` (that user's payment lists and balance;
bumped for payer and recipient by any payment change: membership, status,
order) and ``payment:<id>`` (one payment's detail, which staff can read too, so
it cannot hang on the payer's and recipient's scopes alone).

Row scopes (docs/cache.md, "Coarse scopes and row scopes"): every payment representation embeds
the job (id, title, status) and both users (names, rating): lists and details
name ``job:<job_id>``, ``user:<payer_id>`` and ``user:<recipient_id>`` of every
payment shown, so a job moving to ``completed`` or a new rating shows at once
while other users' writes leave the entry valid. Every payment response is
private (``private=True``): the response cache keys it by caller and adds
``user:<caller>`` itself.
"""
from core.cache import page_rows
from core.signals import track

from .models import Payment

ROW_COLUMNS = (("job", "job_id"), ("user", "payer_id"), ("user", "recipient_id"))


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
    return [payments_scope(request.user.pk)]


def my_payments_rows(view, request, **kwargs):
    """The jobs and users of the page (same filter and order as the view)."""
    from .views import _status_filter

    queryset = Payment.objects.involving(request.user).with_status(_status_filter(request)).for_list()
    return page_rows(view, queryset, *ROW_COLUMNS)


def payment_detail_scopes(view, request, pk=None, **kwargs):
    return [payment_scope(pk)]


def payment_detail_rows(view, request, pk=None, **kwargs):
    """The payment's job and users (1 query on a miss; they never change). Read
    whatever the caller may see: the build answers 404 and stores nothing if the
    caller may not see it."""
    return page_rows(view, Payment.objects.visible_to(request.user).filter(pk=pk), *ROW_COLUMNS, paged=False)


def user_payments_scopes(view, request, pk=None, **kwargs):
    # Staff may read another user's list: it depends on that user's payments (an
    # id without a user yet is an empty list; the bulk writer, seed, bumps
    # ``payments:user:<id>`` of every user it creates).
    return [payments_scope(pk)]


def user_payments_rows(view, request, pk=None, **kwargs):
    from .views import _status_filter

    queryset = Payment.objects.involving(pk).with_status(_status_filter(request)).for_list()
    return page_rows(view, queryset, *ROW_COLUMNS)


def balance_scopes(view, request, **kwargs):
    # Totals only: no names, no job titles.
    return [payments_scope(request.user.pk)]


track(Payment, payment_scopes)
