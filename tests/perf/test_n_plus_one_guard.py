"""The test-wide N+1 guard (tests/perf/n_plus_one_guard.py, wired in
tests/conftest.py) fires on a deliberate N+1 and stays quiet on the same loop
written with select_related."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.models import Job
from tests.jobs.factories import JobFactory
from tests.perf.n_plus_one_guard import NPlusOneFound, collect_n_plus_one, n_plus_one_guard

ROOT = Path(__file__).resolve().parents[2]
# zeal also warns about each deliberate N+1 below: expected here, not noise to show.
pytestmark = pytest.mark.filterwarnings("ignore:N\\+1 detected:UserWarning")


class ClientNamesNPlusOneView(APIView):
    """Deliberately wrong: one query for the jobs, then one per job for its client."""

    authentication_classes = []
    permission_classes = []

    def get(self, request):
        return Response([job.client.first_name for job in Job.objects.order_by("id")])


urlpatterns = [path("n-plus-one/", ClientNamesNPlusOneView.as_view())]


@pytest.mark.django_db
def test_guard_fires_on_a_deliberate_n_plus_one_loop():
    JobFactory.create_batch(3)
    with pytest.raises(NPlusOneFound) as caught:
        with n_plus_one_guard():
            [job.client.email for job in Job.objects.all()]
    assert "N+1 detected on jobs.Job.client" in str(caught.value)


@pytest.mark.django_db
def test_guard_is_quiet_when_the_relation_is_joined(django_assert_num_queries):
    JobFactory.create_batch(3)
    with n_plus_one_guard() as found, django_assert_num_queries(1):
        emails = [job.client.email for job in Job.objects.select_related("client")]
    assert len(emails) == 3
    assert found == []


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_guard_fires_inside_a_request_even_when_the_response_succeeds(anon):
    JobFactory.create_batch(3)
    with pytest.raises(NPlusOneFound) as caught:
        with collect_n_plus_one():  # what conftest opens around every test
            response = anon.get("/n-plus-one/")
            # zeal reports instead of raising, so the view itself still answers
            assert response.status_code == 200
            assert len(response.json()["data"]) == 3
    assert "jobs.Job.client" in str(caught.value)


def test_guard_fails_a_whole_test_run_that_has_an_n_plus_one():
    """End to end: a child pytest (SQLite, local-memory cache) runs a test that
    passes its own assertions but does an N+1; the guard makes it fail."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/perf/deliberate_n_plus_one.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED tests/perf/deliberate_n_plus_one.py::test_lists_client_names_with_one_query_per_job" in result.stdout
    assert "NPlusOneFound" in result.stdout
    assert "N+1 detected on jobs.Job.client at " in result.stdout
