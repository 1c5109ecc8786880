"""What only PostgreSQL can prove: concurrent reviews on real connections."""
import pytest

from accounts.models import User
from jobs.models import ApplicationStatus, JobStatus
from ratings.models import Review
from tests.accounts.factories import ClientUserFactory, WorkerUserFactory
from tests.concurrency import run_together
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, JobFactory
from tests.ratings.factories import completed_job

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_reviews_same_job_and_direction_at_once_make_one_row():
    client, worker = ClientUserFactory(), WorkerUserFactory()
    job = completed_job(client=client, worker=worker)

    def review(rating):
        return auth_client(client).post(
            "/api/v1/reviews/", {"job": job.pk, "reviewed": worker.pk, "rating": rating}, format="json"
        ).status_code

    assert sorted(run_together(lambda: review(5), lambda: review(2))) == [201, 409]
    assert Review.objects.count() == 1
    worker.refresh_from_db()
    assert worker.rating_count == 1
    assert worker.rating_sum == Review.objects.get().rating


def test_concurrent_reviews_of_one_user_all_count():
    """Five clients review the same worker at once: the row lock on the reviewed user
    serialises the F() updates, every rating is counted."""
    worker = WorkerUserFactory()
    jobs = [completed_job(client=ClientUserFactory(), worker=worker) for _ in range(5)]

    def review(job, rating):
        return auth_client(job.client).post(
            "/api/v1/reviews/", {"job": job.pk, "reviewed": worker.pk, "rating": rating}, format="json"
        ).status_code

    ratings = [5, 4, 3, 2, 1]
    statuses = run_together(*[lambda j=j, r=r: review(j, r) for j, r in zip(jobs, ratings)])
    assert statuses == [201] * 5
    worker = User.objects.get(pk=worker.pk)
    assert (worker.rating_sum, worker.rating_count) == (15, 5)


def test_both_directions_at_once_both_succeed():
    client, worker = ClientUserFactory(), WorkerUserFactory()
    job = JobFactory(client=client, status=JobStatus.COMPLETED)
    ApplicationFactory(job=job, worker=worker, status=ApplicationStatus.ACCEPTED)

    def review(by, reviewed):
        return auth_client(by).post(
            "/api/v1/reviews/", {"job": job.pk, "reviewed": reviewed.pk, "rating": 4}, format="json"
        ).status_code

    assert run_together(lambda: review(client, worker), lambda: review(worker, client)) == [201, 201]
    assert Review.objects.count() == 2
