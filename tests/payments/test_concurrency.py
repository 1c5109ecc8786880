"""What only PostgreSQL can prove: concurrent requests on real connections.

Each thread makes its request through its own APIClient (the whole Django stack,
its own database connection, closed at the end); a ``threading.Barrier`` releases
them together."""
import threading
import time
from decimal import Decimal

import pytest

from payments.gateway import FakeGateway
from payments.models import Payment, PaymentStatus
from tests.accounts.factories import ClientUserFactory, StaffUserFactory, WorkerUserFactory
from tests.concurrency import run_together
from tests.conftest import auth_client
from tests.payments.factories import PaymentFactory, hire

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class SlowCountingGateway(FakeGateway):
    """Takes a while to answer (so a racing request arrives during the call) and
    counts what it was asked to do."""

    calls: list = []
    lock = threading.Lock()

    def charge(self, **kwargs):
        with self.lock:
            self.calls.append(("charge", kwargs["reference"]))
        time.sleep(0.2)
        return super().charge(**kwargs)

    def refund(self, **kwargs):
        with self.lock:
            self.calls.append(("refund", kwargs["reference"]))
        time.sleep(0.2)
        return super().refund(**kwargs)


@pytest.fixture
def slow_gateway(settings):
    settings.PAYMENT_GATEWAY = "tests.payments.test_concurrency.SlowCountingGateway"
    SlowCountingGateway.calls = []
    return SlowCountingGateway


def test_twenty_creations_with_one_key_make_one_payment():
    client, worker = ClientUserFactory(), WorkerUserFactory()
    job = hire(client=client, worker=worker)
    body = {"job": job.pk, "recipient": worker.pk, "amount": "40.00", "currency": "EUR"}

    def create():
        response = auth_client(client).post(
            "/api/v1/payments/", body, format="json", HTTP_IDEMPOTENCY_KEY="one-key-for-all"
        )
        return response.status_code, response.json()["data"]

    results = run_together(*[create] * 20)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 19 + [201]
    payloads = [data for _, data in results]
    assert all(data == payloads[0] for data in payloads)
    assert Payment.objects.count() == 1
    assert Payment.objects.get().pk == payloads[0]["id"]


def test_same_key_other_bodies_at_once_one_wins_the_rest_409():
    client, worker = ClientUserFactory(), WorkerUserFactory()
    job = hire(client=client, worker=worker)

    def create(amount):
        body = {"job": job.pk, "recipient": worker.pk, "amount": amount, "currency": "EUR"}
        return auth_client(client).post(
            "/api/v1/payments/", body, format="json", HTTP_IDEMPOTENCY_KEY="k"
        ).status_code

    statuses = run_together(*[lambda a=f"{n}.00": create(a) for n in range(1, 6)])
    assert sorted(statuses) == [201, 409, 409, 409, 409]
    assert Payment.objects.count() == 1


def test_twenty_creations_for_one_job_and_worker_under_twenty_keys_make_one_payment():
    """One live payment per job and worker (``payment_one_live_per_job_worker``):
    twenty different Idempotency-Keys at once -> one 201, nineteen 409s that all
    name the one payment, one row."""
    client, worker = ClientUserFactory(), WorkerUserFactory()
    job = hire(client=client, worker=worker)
    body = {"job": job.pk, "recipient": worker.pk, "amount": "40.00", "currency": "EUR"}

    def create(key):
        response = auth_client(client).post("/api/v1/payments/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        return response.status_code, response.json()

    results = run_together(*[lambda k=f"key-{n}": create(k) for n in range(20)])
    assert sorted(status for status, _ in results) == [201] + [409] * 19
    assert Payment.objects.count() == 1
    payment = Payment.objects.get()
    created = next(body for status, body in results if status == 201)
    assert created["data"]["id"] == payment.pk
    for status, answer in results:
        if status == 409:
            assert answer["error"] == "conflict" and payment.reference in answer["message"]
            assert answer["details"]["payment"]["id"] == payment.pk


def test_two_confirms_at_once_charge_once(slow_gateway):
    payment = PaymentFactory()
    payer = payment.payer

    def confirm():
        return auth_client(payer).post(f"/api/v1/payments/{payment.pk}/confirm/").status_code

    assert sorted(run_together(confirm, confirm)) == [200, 409]
    assert slow_gateway.calls == [("charge", payment.reference)]
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED


def test_two_refunds_at_once_refund_once(slow_gateway):
    payment = PaymentFactory(status=PaymentStatus.SUCCEEDED, amount=Decimal("12.00"))
    staff = StaffUserFactory()

    def refund(user):
        return auth_client(user).post(f"/api/v1/payments/{payment.pk}/refund/").status_code

    assert sorted(run_together(lambda: refund(payment.payer), lambda: refund(staff))) == [200, 409]
    assert slow_gateway.calls == [("refund", payment.reference)]
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED


def test_confirm_and_refund_at_once_never_refund_a_pending_payment(slow_gateway):
    """Refund racing confirm: either refund waits for the confirm and succeeds, or it
    runs first and sees 'pending' (409). Never a refund of an uncharged payment."""
    payment = PaymentFactory()

    def call(action):
        return auth_client(payment.payer).post(f"/api/v1/payments/{payment.pk}/{action}/").status_code

    confirm_status, refund_status = run_together(lambda: call("confirm"), lambda: call("refund"))
    assert confirm_status == 200
    payment.refresh_from_db()
    if refund_status == 200:
        assert payment.status == PaymentStatus.REFUNDED
        assert [c[0] for c in slow_gateway.calls] == ["charge", "refund"]
    else:
        assert refund_status == 409
        assert payment.status == PaymentStatus.SUCCEEDED
        assert [c[0] for c in slow_gateway.calls] == ["charge"]
