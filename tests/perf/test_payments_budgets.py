"""Query budgets of the payments endpoints, at two data sizes: the same count at
both, at or under budget (list = auth + ids + COUNT + page = 4, detail = auth +
ids + row = 3, balance = auth + 1 aggregate; the ids query reads the row scopes
of a MISS, docs/cache.md). Each measured request is a cache MISS; the repeat is
a HIT that costs only the token lookup."""
from decimal import Decimal

import pytest

from payments.models import PaymentStatus
from tests.accounts.factories import ClientUserFactory, StaffUserFactory
from tests.conftest import auth_client
from tests.payments.factories import PaymentFactory, hire
from tools.contracts import miss_budget

pytestmark = pytest.mark.django_db

SIZES = [3, 30]
STATUSES = [PaymentStatus.PENDING, PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED]


def make_payments(payer, size):
    """``size`` payments of ``payer``, each with its own job and recipient, mixed
    statuses, and a few in another currency."""
    payments = []
    for i in range(size):
        fields = {"payer": payer, "status": STATUSES[i % 3], "amount": Decimal("10.00") + i}
        if i % 5 == 4:
            job = hire(client=payer, currency="USD")
            fields.update(job=job, recipient=job.applications.get().worker, currency="USD")
        payments.append(PaymentFactory(**fields))
    return payments


# MISS budgets from the contract table (tools/contracts.py).
PAYMENTS = miss_budget("/payments/", signed_in=True)
USER_PAYMENTS = miss_budget("/users/{id}/payments/", signed_in=True)
PAYMENT_DETAIL = miss_budget("/payments/{id}/", signed_in=True)
BALANCE = miss_budget("/users/me/balance/", signed_in=True)


def measured(api, url, count, django_assert_num_queries, hit_count=1):
    with django_assert_num_queries(count):
        response = api.get(url)
    assert response.status_code == 200 and response["X-Cache"] == "MISS"
    with django_assert_num_queries(hit_count):  # the token lookup only
        again = api.get(url)
    assert again["X-Cache"] == "HIT" and again.content.split(b'"message"')[0] == response.content.split(
        b'"message"'
    )[0]
    return response.json()


@pytest.mark.parametrize("size", SIZES)
def test_payment_list_budget(size, django_assert_num_queries):
    payer = ClientUserFactory()
    make_payments(payer, size)
    body = measured(auth_client(payer), "/api/v1/payments/?per_page=100", PAYMENTS, django_assert_num_queries)
    assert len(body["data"]) == size


@pytest.mark.parametrize("size", SIZES)
def test_payment_list_of_a_recipient_filtered_budget(size, django_assert_num_queries):
    payer = ClientUserFactory()
    payments = make_payments(payer, size)
    recipient = payments[0].recipient
    for _ in range(size - 1):
        PaymentFactory(recipient=recipient, status=PaymentStatus.SUCCEEDED)
    body = measured(auth_client(recipient), "/api/v1/payments/?status=succeeded", PAYMENTS, django_assert_num_queries)
    assert len(body["data"]) == min(size - 1, 20)


@pytest.mark.parametrize("size", SIZES)
def test_user_payments_budget(size, django_assert_num_queries):
    payer = ClientUserFactory()
    make_payments(payer, size)
    url = f"/api/v1/users/{payer.pk}/payments/?per_page=100"
    assert len(measured(auth_client(payer), url, USER_PAYMENTS, django_assert_num_queries)["data"]) == size
    assert len(measured(auth_client(StaffUserFactory()), url, USER_PAYMENTS, django_assert_num_queries)["data"]) == size


@pytest.mark.parametrize("size", SIZES)
def test_payment_detail_budget(size, django_assert_num_queries):
    payer = ClientUserFactory()
    payments = make_payments(payer, size)
    body = measured(auth_client(payer), f"/api/v1/payments/{payments[-1].pk}/", PAYMENT_DETAIL, django_assert_num_queries)
    assert body["data"]["id"] == payments[-1].pk


@pytest.mark.parametrize("size", SIZES)
def test_balance_is_one_aggregate_query(size, django_assert_num_queries):
    payer = ClientUserFactory()
    make_payments(payer, size)
    body = measured(auth_client(payer), "/api/v1/users/me/balance/", BALANCE, django_assert_num_queries)
    assert {row["currency"] for row in body["data"]["by_currency"]} == ({"EUR", "USD"} if size >= 5 else {"EUR"})
