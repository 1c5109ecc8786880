"""Reviews over HTTP (docs/API.md): shapes, filters, who may review whom, bad input
(always a 4xx envelope, never a 500), mass assignment and the throttle."""
import pytest
from rest_framework import serializers

from accounts.models import User
from core.throttling import UserScopedThrottle
from jobs.models import ApplicationStatus, JobStatus
from ratings.models import Review
from ratings.views import ReviewViewSet
from tests.accounts.factories import ClientUserFactory, StaffUserFactory, WorkerUserFactory
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, JobFactory
from tests.payments.test_api import PRIVATE_FIELDS, assert_error, keys_in
from tests.ratings.factories import ReviewFactory, completed_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(client_user, worker_user):
    return completed_job(client=client_user, worker=worker_user)


@pytest.fixture
def body(job, worker_user):
    return {"job": job.pk, "reviewed": worker_user.pk, "rating": 5, "comment": "Punctual and careful."}


def post(client, data, **extra):
    return client.post("/api/v1/reviews/", data, format="json", **extra)


# --- create ----------------------------------------------------------------------

def test_client_reviews_worker_201_shape(as_client, body, client_user, worker_user, job):
    response = post(as_client, body)
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert set(data) >= {"id", "job", "reviewer", "reviewed", "rating", "comment", "created_at"}
    assert (data["job"]["id"], data["job"]["title"]) == (job.pk, job.title)
    assert data["reviewer"]["id"] == client_user.pk and data["reviewed"]["id"] == worker_user.pk
    assert data["reviewed"]["rating_avg"] == "5.00"
    assert (data["rating"], data["comment"]) == (5, "Punctual and careful.")
    assert not keys_in(response.json()) & PRIVATE_FIELDS
    worker_user.refresh_from_db()
    assert (worker_user.rating_sum, worker_user.rating_count) == (5, 1)


def test_worker_reviews_client_and_twice_is_409(as_worker, job, client_user):
    body = {"job": job.pk, "reviewed": client_user.pk, "rating": 3}
    assert post(as_worker, body).status_code == 201
    assert_error(post(as_worker, {**body, "rating": 1}), 409, "conflict")
    client_user.refresh_from_db()
    assert (client_user.rating_sum, client_user.rating_count) == (3, 1)


def test_anonymous_is_401(anon, body):
    assert_error(post(anon, body), 401, "not_authenticated")


def test_outsider_is_403_and_job_not_completed_is_400(body, job):
    assert_error(post(auth_client(WorkerUserFactory()), body), 403, "permission_denied")
    assert_error(post(auth_client(StaffUserFactory()), body), 403, "permission_denied")
    pending = ApplicationFactory(job=job, status=ApplicationStatus.PENDING).worker
    assert_error(post(auth_client(pending), {**body, "reviewed": job.client_id}), 403, "permission_denied")
    running = completed_job(status=JobStatus.IN_PROGRESS)
    worker = running.applications.get().worker
    result = post(auth_client(running.client), {"job": running.pk, "reviewed": worker.pk, "rating": 4})
    assert "job" in assert_error(result, 400, "validation_error")["details"]
    assert Review.objects.count() == 0


@pytest.mark.parametrize(
    "change, field",
    [
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": -1}, "rating"),
        ({"rating": 4.5}, "rating"),
        ({"rating": "abc"}, "rating"),
        ({"rating": None}, "rating"),
        ({"comment": "x" * 2001}, "comment"),
        ({"comment": "nul\x00byte"}, "comment"),
        ({"job": 999999}, "job"),
        ({"job": 10**20}, "job"),
        ({"job": "one"}, "job"),
        ({"reviewed": 999999}, "reviewed"),
        ({"reviewed": 0}, "reviewed"),
    ],
)
def test_bad_body_is_400(as_client, body, change, field):
    result = assert_error(post(as_client, {**body, **change}), 400, "validation_error")
    assert field in result["details"]
    assert Review.objects.count() == 0


def test_reviewing_yourself_is_400(as_client, body, client_user):
    assert_error(post(as_client, {**body, "reviewed": client_user.pk}), 400, "validation_error")


def test_unicode_comment_and_longest_comment(as_client, body, job):
    response = post(as_client, {**body, "comment": "Très bien 👍 — 很好"})
    assert response.status_code == 201
    assert response.json()["data"]["comment"] == "Très bien 👍 — 很好"
    worker = ApplicationFactory(job=job, status=ApplicationStatus.ACCEPTED).worker
    assert post(as_client, {**body, "reviewed": worker.pk, "comment": "é" * 2000}).status_code == 201


def test_malformed_json_and_wrong_content_type(as_client):
    assert_error(as_client.post("/api/v1/reviews/", data=b'{"rating": ', content_type="application/json"), 400,
                 "validation_error")
    assert_error(as_client.post("/api/v1/reviews/", data="rating=5", content_type="text/plain"), 415,
                 "unsupported_media_type")
    assert_error(as_client.post("/api/v1/reviews/", data=b'"just a string"', content_type="application/json"),
                 400, "validation_error")


def test_mass_assignment_changes_nothing(as_client, body, client_user, worker_user):
    other = ClientUserFactory()
    response = post(as_client, {**body, "reviewer": other.pk, "id": 777, "created_at": "2000-01-01T00:00:00Z"})
    assert response.status_code == 201
    review = Review.objects.get()
    assert review.reviewer_id == client_user.pk and review.pk != 777 and review.created_at.year > 2000


class LaxReviewCreateSerializer(serializers.Serializer):
    """No friendly checks: lets values reach the database's own constraints."""

    job = serializers.IntegerField()
    reviewed = serializers.IntegerField()
    rating = serializers.IntegerField()
    comment = serializers.CharField(required=False, default="")


@pytest.mark.parametrize("rating", [0, 6])
def test_database_rating_check_is_a_400_through_the_api(as_client, body, monkeypatch, rating, worker_user):
    monkeypatch.setattr(ReviewViewSet, "create_serializer_class", LaxReviewCreateSerializer)
    result = assert_error(post(as_client, {**body, "rating": rating}), 400, "validation_error")
    assert "rating" in result["details"]
    assert User.objects.get(pk=worker_user.pk).rating_count == 0


def test_database_self_review_check_is_a_400_through_the_api(as_client, client_user, job):
    ApplicationFactory(job=job, worker=client_user, status=ApplicationStatus.ACCEPTED)  # never made by the API
    result = post(as_client, {"job": job.pk, "reviewed": client_user.pk, "rating": 5})
    assert "reviewed" in assert_error(result, 400, "validation_error")["details"]


def test_database_unique_review_is_a_409_through_the_api(as_client, body, client_user, worker_user, job):
    ReviewFactory(job=job, reviewer=client_user, reviewed=worker_user)  # made behind the service's back
    assert_error(post(as_client, body), 409, "conflict")


def test_throttle_is_429(client_user, monkeypatch):
    monkeypatch.setattr(UserScopedThrottle, "THROTTLE_RATES", {"reviews": "2/min"})
    api = auth_client(client_user)
    workers = [WorkerUserFactory() for _ in range(3)]
    job = JobFactory(client=client_user, status=JobStatus.COMPLETED, workers_needed=3)
    for worker in workers:
        ApplicationFactory(job=job, worker=worker, status=ApplicationStatus.ACCEPTED)
    assert post(api, {"job": job.pk, "reviewed": workers[0].pk, "rating": 5}).status_code == 201
    assert post(api, {"job": job.pk, "reviewed": workers[1].pk, "rating": 5}).status_code == 201
    assert_error(post(api, {"job": job.pk, "reviewed": workers[2].pk, "rating": 5}), 429, "throttled")
    assert api.get("/api/v1/reviews/").status_code == 200  # reads are not throttled


# --- lists -------------------------------------------------------------------------

@pytest.fixture
def reviews():
    worker = WorkerUserFactory()
    a = ReviewFactory(reviewed=worker, rating=5)
    b = ReviewFactory(reviewed=worker, rating=3)
    c = ReviewFactory(reviewer=worker, reviewed=ClientUserFactory(),
                      job=completed_job(client=ClientUserFactory(), worker=worker))
    return {"worker": worker, "a": a, "b": b, "c": c}


def ids(response):
    assert response.status_code == 200, response.content
    return [r["id"] for r in response.json()["data"]]


def test_review_list_is_public_newest_first_and_filterable(anon, reviews):
    r = reviews
    assert ids(anon.get("/api/v1/reviews/")) == [r["c"].pk, r["b"].pk, r["a"].pk]
    assert ids(anon.get(f"/api/v1/reviews/?reviewed={r['worker'].pk}")) == [r["b"].pk, r["a"].pk]
    assert ids(anon.get(f"/api/v1/reviews/?reviewer={r['worker'].pk}")) == [r["c"].pk]
    assert ids(anon.get(f"/api/v1/reviews/?job={r['a'].job_id}")) == [r["a"].pk]
    assert ids(anon.get(f"/api/v1/reviews/?job={r['a'].job_id}&reviewed={r['b'].reviewed_id}")) == [r["a"].pk]
    assert ids(anon.get("/api/v1/reviews/?reviewed=999999")) == []
    body = anon.get("/api/v1/reviews/").json()
    assert body["pagination"]["total_items"] == 3
    assert not keys_in(body) & PRIVATE_FIELDS


@pytest.mark.parametrize("query", ["reviewed=abc", "reviewer=-1", "job=1.5", f"job={10**20}", "reviewed=0"])
def test_invalid_filters_are_400(anon, query):
    assert_error(anon.get(f"/api/v1/reviews/?{query}"), 400, "validation_error")


def test_user_review_lists(anon, as_worker, reviews):
    r = reviews
    worker = r["worker"].pk
    assert ids(anon.get(f"/api/v1/users/{worker}/reviews/")) == [r["b"].pk, r["a"].pk]
    assert ids(anon.get(f"/api/v1/users/{worker}/reviews-given/")) == [r["c"].pk]
    assert ids(as_worker.get(f"/api/v1/users/{worker}/reviews/")) == [r["b"].pk, r["a"].pk]
    # An id without a user is a 404 in the envelope; a user without reviews, an empty list.
    assert_error(anon.get("/api/v1/users/999999/reviews/"), 404, "not_found")
    assert_error(anon.get("/api/v1/users/999999/reviews-given/"), 404, "not_found")
    assert ids(anon.get(f"/api/v1/users/{ClientUserFactory().pk}/reviews-given/")) == []
    # Out of range: the ``id`` path converter refuses it (core/converters.py): 404, no 500.
    assert anon.get(f"/api/v1/users/{10**20}/reviews-given/").status_code == 404
    body = anon.get(f"/api/v1/users/{worker}/reviews/").json()
    assert not keys_in(body) & PRIVATE_FIELDS


def test_review_lists_paginate(anon, reviews):
    body = anon.get("/api/v1/reviews/?per_page=2&page=2").json()
    assert len(body["data"]) == 1 and body["pagination"]["has_prev"] is True
    assert_error(anon.get("/api/v1/reviews/?page=9"), 404, "not_found")
