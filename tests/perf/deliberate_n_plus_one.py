"""Not collected by the suite (the name does not start with ``test_``):
tests/perf/test_n_plus_one_guard.py runs this file in a child pytest to prove that
the guard in tests/conftest.py fails an otherwise passing test whose request does
an N+1."""
import pytest

from tests.jobs.factories import JobFactory


@pytest.mark.django_db
@pytest.mark.urls("tests.perf.test_n_plus_one_guard")
def test_lists_client_names_with_one_query_per_job(anon):
    JobFactory.create_batch(3)
    response = anon.get("/n-plus-one/")
    assert response.status_code == 200
    assert len(response.json()["data"]) == 3
