"""ratings.services.review_create: who may review whom, once per direction, the
denormalised rating, and database constraints turned into API errors."""
import pytest

from accounts.models import User
from core.rules import Invalid, NotAllowed, StateConflict
from jobs.models import ApplicationStatus, JobStatus
from ratings.models import Review
from ratings.services import review_create
from tests.accounts.factories import ClientUserFactory, WorkerUserFactory
from tests.jobs.factories import ApplicationFactory
from tests.ratings.factories import completed_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def parties():
    client, worker = ClientUserFactory(), WorkerUserFactory()
    return client, worker, completed_job(client=client, worker=worker)


def test_both_sides_review_each_other_and_ratings_add_up(parties):
    client, worker, job = parties
    review = review_create(reviewer=client, job=job.pk, reviewed=worker.pk, rating=4, comment="Great")
    assert (review.reviewer, review.reviewed, review.rating, review.comment) == (client, worker, 4, "Great")
    assert review.reviewed.rating_avg == 4  # the returned object is up to date, no re-read needed
    review_create(reviewer=worker, job=job.pk, reviewed=client.pk, rating=5)
    second_job = completed_job(client=ClientUserFactory(), worker=worker)
    review_create(reviewer=second_job.client, job=second_job.pk, reviewed=worker.pk, rating=1)
    worker.refresh_from_db()
    client.refresh_from_db()
    assert (worker.rating_sum, worker.rating_count, str(worker.rating_avg)) == (5, 2, "2.50")
    assert (client.rating_sum, client.rating_count) == (5, 1)


def test_second_review_same_direction_is_409_and_sums_unchanged(parties):
    client, worker, job = parties
    review_create(reviewer=client, job=job.pk, reviewed=worker.pk, rating=3)
    with pytest.raises(StateConflict):
        review_create(reviewer=client, job=job.pk, reviewed=worker.pk, rating=5)
    worker.refresh_from_db()
    assert (worker.rating_sum, worker.rating_count, Review.objects.count()) == (3, 1, 1)


@pytest.mark.parametrize("status", [JobStatus.OPEN, JobStatus.FILLED, JobStatus.IN_PROGRESS, JobStatus.CANCELLED])
def test_only_completed_jobs(status):
    job = completed_job(status=status)
    worker = job.applications.get().worker
    with pytest.raises(Invalid):
        review_create(reviewer=job.client, job=job.pk, reviewed=worker.pk, rating=5)


def test_unknown_job_and_unknown_reviewed(parties):
    client, worker, job = parties
    with pytest.raises(Invalid) as exc:
        review_create(reviewer=client, job=987654, reviewed=worker.pk, rating=5)
    assert exc.value.field == "job"
    with pytest.raises(Invalid) as exc:
        review_create(reviewer=client, job=job.pk, reviewed=987654, rating=5)
    assert exc.value.field == "reviewed"


def test_outsiders_and_non_accepted_workers_may_not_review(parties):
    client, worker, job = parties
    pending = ApplicationFactory(job=job, status=ApplicationStatus.PENDING).worker
    for outsider in (pending, WorkerUserFactory(), ClientUserFactory()):
        with pytest.raises(NotAllowed):
            review_create(reviewer=outsider, job=job.pk, reviewed=worker.pk, rating=5)
    assert Review.objects.count() == 0


def test_reviewed_must_be_the_other_side(parties):
    client, worker, job = parties
    other_worker = ApplicationFactory(job=job, status=ApplicationStatus.ACCEPTED).worker
    pending = ApplicationFactory(job=job, status=ApplicationStatus.PENDING).worker
    # The client reviews a worker who was not accepted, or themself.
    for reviewed in (pending, client, WorkerUserFactory()):
        with pytest.raises(Invalid):
            review_create(reviewer=client, job=job.pk, reviewed=reviewed.pk, rating=5)
    # A worker reviews another worker (only the client is their counterpart).
    with pytest.raises(Invalid):
        review_create(reviewer=worker, job=job.pk, reviewed=other_worker.pk, rating=5)


@pytest.mark.parametrize("rating", [0, 6])
def test_database_rating_check_is_a_400(parties, rating):
    client, worker, job = parties
    with pytest.raises(Invalid) as exc:
        review_create(reviewer=client, job=job.pk, reviewed=worker.pk, rating=rating)
    assert exc.value.field == "rating"
    worker.refresh_from_db()
    assert (worker.rating_sum, worker.rating_count, Review.objects.count()) == (0, 0, 0)


def test_database_self_review_check_is_a_400():
    client = ClientUserFactory()
    job = completed_job(client=client, worker=WorkerUserFactory())
    # A state the jobs API never makes: the client accepted on their own job.
    ApplicationFactory(job=job, worker=client, status=ApplicationStatus.ACCEPTED)
    with pytest.raises(Invalid) as exc:
        review_create(reviewer=client, job=job.pk, reviewed=client.pk, rating=5)
    assert exc.value.field == "reviewed"
    assert User.objects.get(pk=client.pk).rating_count == 0
