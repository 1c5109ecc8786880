"""Payments test data: a hired worker (accepted application) and payments."""
from decimal import Decimal

import factory

from jobs.models import ApplicationStatus, JobStatus
from payments.models import Payment, PaymentStatus
from payments.services import payment_reference_new
from tests.accounts.factories import ClientUserFactory, WorkerUserFactory
from tests.jobs.factories import ApplicationFactory, JobFactory


def hire(*, client=None, worker=None, job_status=JobStatus.IN_PROGRESS, **job_fields):
    """A job of ``client`` with ``worker`` accepted on it: what a payment needs."""
    client = client or ClientUserFactory()
    worker = worker or WorkerUserFactory()
    job = JobFactory(client=client, status=job_status, **job_fields)
    ApplicationFactory(job=job, worker=worker, status=ApplicationStatus.ACCEPTED)
    return job


class PaymentFactory(factory.django.DjangoModelFactory):
    """A payment on its own job (client = payer, accepted worker = recipient)."""

    class Meta:
        model = Payment

    payer = factory.SubFactory(ClientUserFactory)
    recipient = factory.SubFactory(WorkerUserFactory)
    job = factory.LazyAttribute(lambda o: hire(client=o.payer, worker=o.recipient))
    amount = Decimal("50.00")
    currency = "EUR"
    status = PaymentStatus.PENDING
    reference = factory.LazyFunction(payment_reference_new)
    idempotency_key = factory.Sequence(lambda n: f"key-{n}")
    request_fingerprint = "0" * 64
