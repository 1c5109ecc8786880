"""Payments test data: a hired worker (accepted application) on a completed job,
and payments. The data follows the rules the services keep: a payment is for a
completed job, to its accepted worker, at most one live per job and worker."""
from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from jobs.models import ApplicationStatus, JobStatus
from payments.models import Payment, PaymentStatus
from payments.services import payment_reference_new
from tests.accounts.factories import ClientUserFactory, WorkerUserFactory
from tests.jobs.factories import ApplicationFactory, JobFactory


def hire(*, client=None, worker=None, job_status=JobStatus.COMPLETED, **job_fields):
    """A job of ``client`` with ``worker`` accepted on it, by default completed
    yesterday (an 8-hour shift at 20.00/h: worth 160.00): what a payment needs."""
    client = client or ClientUserFactory()
    worker = worker or WorkerUserFactory()
    if job_status in (JobStatus.COMPLETED, JobStatus.IN_PROGRESS):
        job_fields.setdefault("start_at", timezone.now() - timedelta(days=1))
    job_fields.setdefault("accepted_count", 1)
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
