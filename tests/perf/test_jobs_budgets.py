"""Query budgets of the jobs endpoints (see the docstrings of jobs/views.py and the
JobQuerySet / ApplicationQuerySet methods): the same number of queries at two data
sizes, at or under the budget. Every measured request is a cache MISS (the cache is
cleared first); repeated anonymous GETs of public data are a HIT with 0 queries.
A MISS of an endpoint with row scopes (docs/cache.md) runs one more query, the
cheap ids query of the rows it will show; a HIT still runs none."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.accounts.factories import ClientUserFactory, SkillFactory, WorkerUserFactory
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, CategoryFactory, JobFactory, SavedJobFactory
from tests.perf.budgets import queries_of
from tools.contracts import miss_budget

pytestmark = pytest.mark.django_db

SMALL, LARGE = 3, 30


def make_jobs(count, skills_per_job, client=None, categories=None):
    skills = [SkillFactory() for _ in range(skills_per_job)]
    categories = categories or [CategoryFactory(), CategoryFactory()]
    jobs = []
    for i in range(count):
        kwargs = {"client": client} if client else {}
        jobs.append(JobFactory(skills=skills, category=categories[i % len(categories)], **kwargs))
    return jobs


def grow(measure, build_small, build_large, budget):
    """Measure at the small size, grow the data, measure again: same count, within budget."""
    build_small()
    small, small_body = measure()
    build_large()
    large, large_body = measure()
    assert small == large, f"query count grows with the data: {small} -> {large}"
    assert large <= budget, f"{large} queries, budget {budget}"
    return small_body, large_body


@pytest.mark.parametrize("authenticated,budget", [(a, miss_budget("/jobs/", signed_in=a)) for a in (False, True)])
def test_job_list_budget(authenticated, budget):
    caller = auth_client(WorkerUserFactory()) if authenticated else APIClient()
    small_body, large_body = grow(
        lambda: queries_of(caller, "/api/v1/jobs/?per_page=100"),
        lambda: make_jobs(SMALL, 1),
        lambda: make_jobs(LARGE - SMALL, 5),
        budget,
    )
    assert len(small_body["data"]) == SMALL and len(large_body["data"]) == LARGE
    assert {len(row["skills"]) for row in large_body["data"]} == {1, 5}


def test_job_list_budget_with_filters():
    caller = APIClient()
    path = "/api/v1/jobs/?per_page=100&skill=forklift&city=berlin&min_rate=1&ordering=-rate&search=shift"
    forklift = SkillFactory(name="Forklift", slug="forklift")

    def build(count):
        for job in make_jobs(count, 3):
            job.skills.add(forklift)

    grow(lambda: queries_of(caller, path), lambda: build(SMALL), lambda: build(LARGE - SMALL), 4)


def test_public_gets_are_hits_without_queries():
    job = make_jobs(SMALL, 2)[0]
    caller = APIClient()
    for path in ["/api/v1/jobs/", f"/api/v1/jobs/{job.pk}/", "/api/v1/categories/"]:
        first = caller.get(path)
        assert first["X-Cache"] == "MISS"
        with CaptureQueriesContext(connection) as ctx:
            second = caller.get(path)
        assert second["X-Cache"] == "HIT"
        assert len(ctx.captured_queries) == 0, path
        assert second.json()["data"] == first.json()["data"]


@pytest.mark.parametrize("authenticated,budget", [(a, miss_budget("/jobs/{id}/", signed_in=a)) for a in (False, True)])
def test_job_detail_budget(authenticated, budget):
    caller = auth_client(WorkerUserFactory()) if authenticated else APIClient()
    job = JobFactory()
    state = {}

    def build(skills):
        job.skills.set([SkillFactory() for _ in range(skills)])
        ApplicationFactory.create_batch(skills, job=job)
        state["skills"] = skills

    small_body, large_body = grow(
        lambda: queries_of(caller, f"/api/v1/jobs/{job.pk}/"), lambda: build(1), lambda: build(5), budget
    )
    assert len(large_body["data"]["skills"]) == 5


def test_categories_budget():
    grow(
        lambda: queries_of(APIClient(), "/api/v1/categories/?per_page=100"),
        lambda: CategoryFactory.create_batch(SMALL),
        lambda: CategoryFactory.create_batch(LARGE - SMALL),
        2,
    )


@pytest.mark.parametrize("role", ["worker", "client"])
def test_applications_list_budget(role):
    """Token + ids + COUNT + page = 4, for a worker (own applications) and a client
    (applications to own jobs)."""
    worker, client = WorkerUserFactory(), ClientUserFactory()
    caller = auth_client(worker if role == "worker" else client)

    def build(count):
        for job in make_jobs(count, 2, client=client):
            ApplicationFactory(job=job, worker=worker)
            ApplicationFactory(job=job)  # others' applications to the client's jobs

    small_body, large_body = grow(
        lambda: queries_of(caller, "/api/v1/applications/?per_page=100"),
        lambda: build(SMALL),
        lambda: build(LARGE - SMALL),
        4,
    )
    expected = LARGE if role == "worker" else 2 * LARGE
    assert len(large_body["data"]) == expected


def test_job_applications_budget():
    """Token + ids + job (visibility) + COUNT + page = 5."""
    client = ClientUserFactory()
    job = JobFactory(client=client, workers_needed=5)
    caller = auth_client(client)
    grow(
        lambda: queries_of(caller, f"/api/v1/jobs/{job.pk}/applications/?per_page=100"),
        lambda: ApplicationFactory.create_batch(SMALL, job=job),
        lambda: ApplicationFactory.create_batch(LARGE - SMALL, job=job),
        5,
    )


def test_saved_jobs_budget():
    """Token + ids + COUNT + page + skills = 5."""
    worker = WorkerUserFactory()
    caller = auth_client(worker)

    def build(count, skills):
        for job in make_jobs(count, skills):
            SavedJobFactory(user=worker, job=job)

    small_body, large_body = grow(
        lambda: queries_of(caller, "/api/v1/users/me/saved-jobs/?per_page=100"),
        lambda: build(SMALL, 1),
        lambda: build(LARGE - SMALL, 5),
        5,
    )
    assert len(large_body["data"]) == LARGE


def test_applications_count_is_a_column_not_a_query():
    """Many applications per job change nothing: the count is Job.applications_count."""
    caller = APIClient()
    jobs = make_jobs(SMALL, 1)

    def apply(n):
        from jobs import services

        for job in jobs:
            for _ in range(n):
                services.application_create(job=job, worker=WorkerUserFactory())

    small_body, large_body = grow(
        lambda: queries_of(caller, "/api/v1/jobs/?per_page=100"), lambda: apply(1), lambda: apply(9), 4
    )
    assert {row["applications_count"] for row in large_body["data"]} == {10}
