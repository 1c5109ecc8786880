"""Query budgets of the review lists, at two data sizes: the same count at both,
at most 3 anonymous (COUNT + page; a token adds its lookup). A repeated
anonymous GET is a public cache HIT with 0 queries."""
import pytest

from tests.accounts.factories import ClientUserFactory, WorkerUserFactory
from tests.conftest import auth_client
from tests.ratings.factories import ReviewFactory, completed_job
from tools.contracts import miss_budget

pytestmark = pytest.mark.django_db

SIZES = [3, 30]


def make_reviews(worker, size):
    """``size`` reviews about ``worker`` and ``size`` by them, each on its own job."""
    for i in range(size):
        ReviewFactory(reviewed=worker, rating=i % 5 + 1)
        client = ClientUserFactory()
        ReviewFactory(reviewer=worker, reviewed=client, job=completed_job(client=client, worker=worker))


def urls(worker):
    return [
        ("/api/v1/reviews/?per_page=100", 2),
        (f"/api/v1/reviews/?reviewed={worker.pk}&per_page=100", 1),
        (f"/api/v1/users/{worker.pk}/reviews/?per_page=100", 1),
        (f"/api/v1/users/{worker.pk}/reviews-given/?per_page=100", 1),
    ]


@pytest.mark.parametrize("size", SIZES)
def test_review_lists_budget_anonymous(size, anon, django_assert_num_queries):
    worker = WorkerUserFactory()
    make_reviews(worker, size)
    for url, per_row in urls(worker):
        with django_assert_num_queries(miss_budget("/reviews/", signed_in=False)):  # ids (row scopes), COUNT, page
            response = anon.get(url)
        assert response.status_code == 200 and response["X-Cache"] == "MISS"
        assert len(response.json()["data"]) == min(size * per_row, 100)
        with django_assert_num_queries(0):
            again = anon.get(url)
        assert again["X-Cache"] == "HIT"


@pytest.mark.parametrize("size", SIZES)
def test_review_list_budget_with_token(size, django_assert_num_queries):
    worker = WorkerUserFactory()
    make_reviews(worker, size)
    api = auth_client(worker)
    with django_assert_num_queries(miss_budget("/reviews/", signed_in=True)):  # token, ids (row scopes), COUNT, page
        response = api.get(f"/api/v1/reviews/?reviewer={worker.pk}")
    assert response.status_code == 200 and len(response.json()["data"]) == min(size, 20)
