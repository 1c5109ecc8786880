"""Payments follow the work, over HTTP: for each rule the refusal (status and a
message a client can show) and the allowed path. The concurrency proof (twenty
keys at once, one row) is in test_concurrency.py (PostgreSQL)."""
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.models import JobStatus
from payments.models import Payment, PaymentStatus
from tests.accounts.factories import WorkerUserFactory
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, JobFactory
from tests.payments.factories import PaymentFactory, hire

pytestmark = pytest.mark.django_db


def pay(client, job, worker, amount="100.00", currency="EUR", key="k-1"):
    body = {"job": job.pk, "recipient": worker.pk, "amount": amount, "currency": currency}
    return auth_client(client).post("/api/v1/payments/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def refused(response, status, field=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False and len(body["message"]) > 10
    if field is not None:
        assert field in body["details"], body
    return body


@pytest.mark.parametrize("status", [JobStatus.OPEN, JobStatus.FILLED, JobStatus.IN_PROGRESS, JobStatus.CANCELLED])
def test_paying_for_a_job_that_is_not_completed_is_409(client_user, worker_user, status):
    job = hire(client=client_user, worker=worker_user, job_status=status)
    result = refused(pay(client_user, job, worker_user), 409)
    assert f"this one is {status}" in result["message"]
    assert Payment.objects.count() == 0


def test_paying_for_a_completed_job_is_201(client_user, worker_user):
    job = hire(client=client_user, worker=worker_user)
    response = pay(client_user, job, worker_user)
    assert response.status_code == 201, response.content
    assert response.json()["data"]["status"] == "pending"


def test_paying_after_the_job_was_completed_through_the_api(client_user, worker_user):
    """The whole road: accept, start in the window, complete after the start, pay."""
    job = JobFactory(client=client_user)
    app = ApplicationFactory(job=job, worker=worker_user)
    owner = auth_client(client_user)
    assert owner.post(f"/api/v1/applications/{app.pk}/accept/").status_code == 200
    refused(pay(client_user, job, worker_user), 409)  # filled, not done
    with time_machine.travel(job.start_at + timedelta(hours=8), tick=False):
        assert owner.post(f"/api/v1/jobs/{job.pk}/start/").status_code == 200
        assert owner.post(f"/api/v1/jobs/{job.pk}/complete/").status_code == 200
        assert pay(client_user, job, worker_user).status_code == 201


def test_a_worker_not_accepted_on_the_job_is_400(client_user, worker_user):
    job = hire(client=client_user, worker=worker_user)
    bystander = ApplicationFactory(job=job, worker=WorkerUserFactory(), status="rejected").worker
    refused(pay(client_user, job, bystander), 400, "recipient")


def test_another_currency_than_the_jobs_is_400(client_user, worker_user):
    job = hire(client=client_user, worker=worker_user)
    result = refused(pay(client_user, job, worker_user, currency="USD"), 400, "currency")
    assert "EUR" in result["message"]


def test_more_than_the_shift_is_worth_is_400_up_to_it_201(client_user, worker_user):
    """25.00/h for an 8-hour shift: at most 200.00 (rate x scheduled hours)."""
    start = timezone.now() - timedelta(days=1)
    job = hire(client=client_user, worker=worker_user, rate=Decimal("25.00"), start_at=start,
               end_at=start + timedelta(hours=8))
    for amount in ("200.01", "9999999999.99"):
        result = refused(pay(client_user, job, worker_user, amount=amount, key=f"k-{amount}"), 400, "amount")
        assert "At most 200.00 EUR" in result["message"]
    assert Payment.objects.count() == 0
    response = pay(client_user, job, worker_user, amount="200.00")
    assert response.status_code == 201, response.content
    assert response.json()["data"]["amount"] == "200.00"


def test_the_ceiling_follows_partial_hours(client_user, worker_user):
    """18.50/h for 4 h 30 min: at most 83.25."""
    start = timezone.now() - timedelta(days=1)
    job = hire(client=client_user, worker=worker_user, rate=Decimal("18.50"), start_at=start,
               end_at=start + timedelta(hours=4, minutes=30))
    refused(pay(client_user, job, worker_user, amount="83.26", key="a"), 400, "amount")
    assert pay(client_user, job, worker_user, amount="83.25", key="b").status_code == 201


def test_one_live_payment_per_job_and_worker_each_worker_paid_once(client_user):
    job = hire(client=client_user, workers_needed=2, accepted_count=2)
    first = job.applications.get().worker
    second = ApplicationFactory(job=job, status="accepted").worker
    assert pay(client_user, job, first, key="a").status_code == 201
    assert pay(client_user, job, second, key="b").status_code == 201  # another worker: its own payment
    result = refused(pay(client_user, job, first, key="c", amount="1.00"), 409)
    live = Payment.objects.get(recipient=first)
    assert result["details"]["payment"]["id"] == live.pk and live.reference in result["message"]
    # Succeeded is still live: 409.
    Payment.objects.filter(pk=live.pk).update(status=PaymentStatus.SUCCEEDED)
    refused(pay(client_user, job, first, key="d"), 409)
    # Refunded is not: a new payment may follow.
    Payment.objects.filter(pk=live.pk).update(status=PaymentStatus.REFUNDED)
    assert pay(client_user, job, first, key="e").status_code == 201
    assert Payment.objects.filter(recipient=first).count() == 2


def test_the_database_refuses_a_second_live_payment_whatever_the_road(client_user, worker_user):
    """The partial unique constraint: a writer that skipped the service still cannot."""
    job = hire(client=client_user, worker=worker_user)
    PaymentFactory(payer=client_user, recipient=worker_user, job=job)
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentFactory(payer=client_user, recipient=worker_user, job=job, status=PaymentStatus.SUCCEEDED)
    PaymentFactory(payer=client_user, recipient=worker_user, job=job, status=PaymentStatus.FAILED)
    assert Payment.objects.filter(job=job).count() == 2
