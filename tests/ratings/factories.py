"""Ratings test data: a completed job with its client and an accepted worker, and reviews."""
import factory

from jobs.models import ApplicationStatus, JobStatus
from ratings.models import Review
from tests.accounts.factories import ClientUserFactory, WorkerUserFactory
from tests.jobs.factories import ApplicationFactory, JobFactory


def completed_job(*, client=None, worker=None, status=JobStatus.COMPLETED):
    """A job of ``client`` in ``status`` with ``worker`` accepted on it."""
    client = client or ClientUserFactory()
    worker = worker or WorkerUserFactory()
    job = JobFactory(client=client, status=status)
    ApplicationFactory(job=job, worker=worker, status=ApplicationStatus.ACCEPTED)
    return job


class ReviewFactory(factory.django.DjangoModelFactory):
    """A client's review of the accepted worker of a completed job (bypasses the
    service: rating sums on User are not touched)."""

    class Meta:
        model = Review

    reviewer = factory.SubFactory(ClientUserFactory)
    reviewed = factory.SubFactory(WorkerUserFactory)
    job = factory.LazyAttribute(lambda o: completed_job(client=o.reviewer, worker=o.reviewed))
    rating = 4
    comment = "Good work."
