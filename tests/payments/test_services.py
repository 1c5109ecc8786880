"""payments.services: the rules, idempotency, state changes, the gateway, and
every database constraint turned into an API error (never a 500)."""
from decimal import Decimal

import pytest

from core.rules import Invalid, Missing, NotAllowed, StateConflict, Unavailable
from jobs.models import ApplicationStatus, JobStatus
from payments import services
from payments.gateway import FakeGateway, GatewayError, GatewayResult, PaymentGateway, get_gateway
from payments.models import Payment, PaymentStatus
from tests.accounts.factories import ClientUserFactory, StaffUserFactory, WorkerUserFactory
from tests.jobs.factories import ApplicationFactory, JobFactory
from tests.payments.factories import PaymentFactory, hire

pytestmark = pytest.mark.django_db


class DecliningGateway(PaymentGateway):
    def charge(self, *, reference, amount, currency):
        return GatewayResult(ok=False, message="card declined")

    def refund(self, *, reference, amount, currency):
        return GatewayResult(ok=False, message="refund refused")


class BrokenGateway(PaymentGateway):
    def charge(self, *, reference, amount, currency):
        raise GatewayError("timeout")

    def refund(self, *, reference, amount, currency):
        raise GatewayError("timeout")


def _create(payer, job, recipient, key="k1", amount="20.00", currency="EUR"):
    return services.payment_create(
        payer=payer,
        job=job.pk,
        recipient=recipient.pk,
        amount=Decimal(amount),
        currency=currency,
        idempotency_key=key,
    )


@pytest.fixture
def parties():
    client, worker = ClientUserFactory(), WorkerUserFactory()
    return client, worker, hire(client=client, worker=worker)


def test_create_then_replay_returns_the_same_payment(parties):
    client, worker, job = parties
    first, created = _create(client, job, worker)
    assert created is True
    assert (first.payer, first.recipient, first.job, first.status) == (client, worker, job, "pending")
    assert first.amount == Decimal("20.00") and first.reference.startswith("PAY-")
    again, created_again = _create(client, job, worker)
    assert created_again is False and again.pk == first.pk
    assert Payment.objects.count() == 1


def test_same_key_other_body_is_a_conflict(parties):
    client, worker, job = parties
    _create(client, job, worker)
    with pytest.raises(StateConflict):
        _create(client, job, worker, amount="21.00")
    assert Payment.objects.count() == 1


def test_keys_are_per_payer(parties):
    client, worker, job = parties
    other_client, other_worker = ClientUserFactory(), WorkerUserFactory()
    other_job = hire(client=other_client, worker=other_worker)
    a, _ = _create(client, job, worker, key="same")
    b, created = _create(other_client, other_job, other_worker, key="same")
    assert created and a.pk != b.pk


def test_recipient_must_be_an_accepted_worker_of_the_callers_job(parties):
    client, worker, job = parties
    pending = ApplicationFactory(job=job, status=ApplicationStatus.PENDING).worker
    with pytest.raises(Invalid) as exc:
        _create(client, job, pending)
    assert exc.value.field == "recipient"
    someone_elses = hire()
    with pytest.raises(Invalid) as exc:
        _create(client, someone_elses, someone_elses.applications.get().worker, key="k2")
    assert exc.value.field == "job"
    assert Payment.objects.count() == 0


def test_currency_must_be_the_jobs(parties):
    client, worker, job = parties
    with pytest.raises(Invalid) as exc:
        _create(client, job, worker, currency="USD")
    assert exc.value.field == "currency"


@pytest.mark.parametrize("amount", ["0.00", "-5.00"])
def test_database_refuses_a_non_positive_amount_as_a_400(parties, amount):
    client, worker, job = parties
    with pytest.raises(Invalid) as exc:
        _create(client, job, worker, amount=amount)
    assert exc.value.field == "amount"
    assert Payment.objects.count() == 0


def test_database_refuses_paying_yourself_as_a_400():
    client = ClientUserFactory()
    job = JobFactory(client=client, status=JobStatus.COMPLETED)
    # A state the jobs API never makes: the client accepted on their own job.
    ApplicationFactory(job=job, worker=client, status=ApplicationStatus.ACCEPTED)
    with pytest.raises(Invalid) as exc:
        _create(client, job, client)
    assert exc.value.field == "recipient"


def test_idempotency_race_window_is_answered_from_the_winners_row(parties, monkeypatch):
    """The first lookup saw nothing (a concurrent request had not committed yet); the
    insert hits the unique (payer, idempotency_key); the second lookup answers."""
    client, worker, job = parties
    winner, _ = _create(client, job, worker)
    real_replay = services._replay
    calls = []

    def blind_first_time(**kwargs):
        calls.append(kwargs)
        return None if len(calls) == 1 else real_replay(**kwargs)

    # The live-payment check runs in the same window: it saw nothing either.
    real_live = services._live_payment
    live_calls = []

    def live_blind_first_time(**kwargs):
        live_calls.append(kwargs)
        return None if len(live_calls) == 1 else real_live(**kwargs)

    monkeypatch.setattr(services, "_replay", blind_first_time)
    monkeypatch.setattr(services, "_live_payment", live_blind_first_time)
    again, created = _create(client, job, worker)
    assert (again.pk, created, len(calls)) == (winner.pk, False, 2)
    calls.clear()
    live_calls.clear()
    with pytest.raises(StateConflict):
        _create(client, job, worker, amount="99.00")
    assert Payment.objects.count() == 1


def test_reference_collision_is_a_conflict_not_a_500(parties, monkeypatch):
    client, worker, job = parties
    first, _ = _create(client, job, worker)
    Payment.objects.filter(pk=first.pk).update(status=PaymentStatus.FAILED)  # a new payment may follow
    monkeypatch.setattr(services, "payment_reference_new", lambda: first.reference)
    with pytest.raises(StateConflict):
        _create(client, job, worker, key="k2")


def test_confirm_then_refund_through_the_gateway():
    payment = PaymentFactory()
    confirmed = services.payment_confirm(payment_id=payment.pk, by=payment.payer)
    assert confirmed.status == PaymentStatus.SUCCEEDED
    assert confirmed.gateway_reference.startswith("fake_ch_")
    with pytest.raises(StateConflict):
        services.payment_confirm(payment_id=payment.pk, by=payment.payer)
    refunded = services.payment_refund(payment_id=payment.pk, by=payment.payer)
    assert refunded.status == PaymentStatus.REFUNDED
    with pytest.raises(StateConflict):
        services.payment_refund(payment_id=payment.pk, by=payment.payer)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED


def test_refund_of_a_pending_payment_is_a_conflict():
    payment = PaymentFactory()
    with pytest.raises(StateConflict):
        services.payment_refund(payment_id=payment.pk, by=payment.payer)


def test_who_may_confirm_and_refund():
    payment = PaymentFactory()
    staff, stranger = StaffUserFactory(), ClientUserFactory()
    with pytest.raises(NotAllowed):
        services.payment_confirm(payment_id=payment.pk, by=payment.recipient)
    with pytest.raises(NotAllowed):
        services.payment_confirm(payment_id=payment.pk, by=staff)
    with pytest.raises(Missing):
        services.payment_confirm(payment_id=payment.pk, by=stranger)
    services.payment_confirm(payment_id=payment.pk, by=payment.payer)
    with pytest.raises(NotAllowed):
        services.payment_refund(payment_id=payment.pk, by=payment.recipient)
    with pytest.raises(Missing):
        services.payment_refund(payment_id=payment.pk, by=stranger)
    assert services.payment_refund(payment_id=payment.pk, by=staff).status == PaymentStatus.REFUNDED


def test_gateway_is_chosen_by_settings(settings):
    assert isinstance(get_gateway(), FakeGateway)
    settings.PAYMENT_GATEWAY = "tests.payments.test_services.DecliningGateway"
    assert isinstance(get_gateway(), DecliningGateway)
    settings.PAYMENT_GATEWAY = "decimal.Decimal"
    with pytest.raises(TypeError):
        get_gateway()


def test_declined_charge_marks_the_payment_failed(settings):
    settings.PAYMENT_GATEWAY = "tests.payments.test_services.DecliningGateway"
    payment = PaymentFactory()
    assert services.payment_confirm(payment_id=payment.pk, by=payment.payer).status == PaymentStatus.FAILED
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED


def test_refused_refund_changes_nothing(settings):
    payment = PaymentFactory(status=PaymentStatus.SUCCEEDED)
    settings.PAYMENT_GATEWAY = "tests.payments.test_services.DecliningGateway"
    with pytest.raises(StateConflict):
        services.payment_refund(payment_id=payment.pk, by=payment.payer)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED


def test_gateway_outage_is_a_503_and_the_payment_stays_pending(settings):
    settings.PAYMENT_GATEWAY = "tests.payments.test_services.BrokenGateway"
    payment = PaymentFactory()
    with pytest.raises(Unavailable):
        services.payment_confirm(payment_id=payment.pk, by=payment.payer)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING


def test_balance_by_currency_sums_each_side():
    client, worker = ClientUserFactory(), WorkerUserFactory()
    PaymentFactory(payer=client, recipient=worker, amount=Decimal("10.00"), status=PaymentStatus.SUCCEEDED)
    PaymentFactory(payer=client, recipient=worker, amount=Decimal("5.50"), status=PaymentStatus.PENDING)
    PaymentFactory(payer=client, recipient=worker, amount=Decimal("7.00"), status=PaymentStatus.REFUNDED)
    PaymentFactory(payer=client, recipient=worker, amount=Decimal("3.00"), status=PaymentStatus.FAILED)
    usd_job = hire(client=client, worker=worker, currency="USD")
    PaymentFactory(payer=client, recipient=worker, job=usd_job, currency="USD", amount=Decimal("4.00"),
                   status=PaymentStatus.SUCCEEDED)
    PaymentFactory(amount=Decimal("100.00"), status=PaymentStatus.SUCCEEDED)  # someone else's
    rows = {row["currency"]: row for row in Payment.objects.balance_by_currency(client)}
    assert rows["EUR"]["paid_total"] == Decimal("10.00")
    assert rows["EUR"]["received_total"] is None
    assert rows["EUR"]["pending_total"] == Decimal("5.50")
    assert rows["USD"]["paid_total"] == Decimal("4.00")
    worker_rows = {row["currency"]: row for row in Payment.objects.balance_by_currency(worker)}
    assert worker_rows["EUR"]["received_total"] == Decimal("10.00")
    assert worker_rows["EUR"]["pending_total"] == Decimal("5.50")
