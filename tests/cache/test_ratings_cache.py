"""Read-your-writes for the review endpoints, including the reviewed user's
rating on ``/users/{id}/`` (the review service updates the User row with
``update()`` and bumps its scopes itself). ``transaction=True`` so that the
bumps in ``transaction.on_commit`` really happen."""
import pytest

from tests.cache.test_jobs_cache import fresh, warm
from tests.conftest import auth_client
from tests.ratings.factories import ReviewFactory, completed_job

pytestmark = pytest.mark.django_db(transaction=True)


def test_new_review_shows_in_lists_and_the_reviewed_users_rating(anon):
    job = completed_job()
    client, worker = job.client, job.applications.get().worker
    paths = [
        "/api/v1/reviews/",
        f"/api/v1/reviews/?reviewed={worker.pk}",
        f"/api/v1/users/{worker.pk}/reviews/",
        f"/api/v1/users/{client.pk}/reviews-given/",
    ]
    for path in paths:
        assert warm(anon, path) == []
    profile = warm(anon, f"/api/v1/users/{worker.pk}/")
    assert (profile["rating_avg"], profile["rating_count"]) == (None, 0)

    response = auth_client(client).post(
        "/api/v1/reviews/", {"job": job.pk, "reviewed": worker.pk, "rating": 4, "comment": "ok"}, format="json"
    )
    assert response.status_code == 201
    review_id = response.json()["data"]["id"]
    for path in paths:
        rows = fresh(anon, path)
        assert [r["id"] for r in rows] == [review_id]
        assert rows[0]["reviewed"]["rating_avg"] == "4.00"
    profile = fresh(anon, f"/api/v1/users/{worker.pk}/")
    assert (profile["rating_avg"], profile["rating_count"]) == ("4.00", 1)


def test_rating_change_shows_in_lists_that_embed_the_user(anon):
    """A review of X changes X's rating_avg inside every review list showing X."""
    old = ReviewFactory()
    worker = old.reviewed
    listing = "/api/v1/reviews/"
    assert warm(anon, listing)[0]["reviewed"]["rating_avg"] is None  # factory rows bypass the sums
    job = completed_job(worker=worker)
    assert auth_client(job.client).post(
        "/api/v1/reviews/", {"job": job.pk, "reviewed": worker.pk, "rating": 2}, format="json"
    ).status_code == 201
    rows = fresh(anon, listing)
    assert {r["reviewed"]["rating_avg"] for r in rows} == {"2.00"}


def test_user_rename_shows_in_review_lists(anon):
    review = ReviewFactory()
    path = f"/api/v1/users/{review.reviewed_id}/reviews/"
    warm(anon, path)
    reviewer = review.reviewer
    reviewer.last_name = "Newname"
    reviewer.save()
    assert fresh(anon, path)[0]["reviewer"]["last_name"] == "Newname"
