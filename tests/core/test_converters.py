"""The ``id`` path converter (core/converters.py): every path id is 1..2**63-1,
anything else is a 404 before a view runs; a leading zero names the same row
(and the same cache scopes) as the plain number."""
import pytest

from core.converters import MAX_ID, IdConverter
from tests.cache.helpers import fresh
from tests.conftest import auth_client
from tests.jobs.factories import JobFactory
from tests.routes import url_patterns


@pytest.mark.parametrize("value", ["1", "007", str(MAX_ID)])
def test_accepts_bigint_ids(value):
    assert IdConverter().to_python(value) == int(value)


@pytest.mark.parametrize("value", ["0", "000", str(MAX_ID + 1), str(10**20)])
def test_refuses_what_no_row_can_have(value):
    with pytest.raises(ValueError):
        IdConverter().to_python(value)


def test_every_api_path_id_uses_it():
    """No ``<int:...>`` or regex id left in the API's routes."""
    api = [(route, p.pattern) for route, p in url_patterns() if route.startswith("api/v1/")]
    with_ids = [route for route, pattern in api if "pk" in getattr(pattern, "converters", {})]
    assert with_ids, "the API has id routes"
    for route, pattern in api:
        converters = getattr(pattern, "converters", {})
        assert "<int:" not in route and "(?P<pk>" not in route, route
        if "pk" in converters:
            assert isinstance(converters["pk"], IdConverter), route


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/api/v1/jobs/0/", f"/api/v1/jobs/{MAX_ID + 1}/", f"/api/v1/users/{MAX_ID + 1}/", "/api/v1/users/0/reviews/",
     f"/api/v1/users/{10**20}/reviews-given/"],
)
def test_out_of_range_ids_are_404(anon, path):
    response = anon.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.django_db
def test_largest_id_reaches_the_view_not_an_error(anon):
    """The largest id passes the converter; the view says no user has it (a 404 in
    the envelope, not a 500 from a bigint overflow)."""
    response = anon.get(f"/api/v1/users/{MAX_ID}/reviews/")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert response.json()["message"] == "No user with this id."


@pytest.mark.django_db(transaction=True)  # bumps run on commit
def test_a_leading_zero_reads_the_same_scopes(anon):
    """``/jobs/007/`` is job 7: an edit of the job retires that URL's entry too
    (as a string, ``job:007`` would be a scope no write ever bumps)."""
    job = JobFactory(title="Before")
    padded = f"/api/v1/jobs/{job.pk:05d}/"
    assert anon.get(padded).json()["data"]["title"] == "Before"
    assert anon.get(padded)["X-Cache"] == "HIT"
    response = auth_client(job.client).patch(f"/api/v1/jobs/{job.pk}/", {"title": "After"}, format="json")
    assert response.status_code == 200
    assert fresh(anon, padded)["title"] == "After"
