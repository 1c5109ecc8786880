"""Every GET endpoint's query budget, generated from the contract table
(tools/contracts.py): for each endpoint and each kind of caller, the first request
(cache MISS) and the same request again (HIT, or simply the second request of an
uncached endpoint) make exactly the table's number of queries, at two data sizes.
The hand-written budget tests beside this one probe particular shapes (filters,
many skills, both roles); this one proves the table, so the README (generated from
the same table) cannot drift from what the code does."""
import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.accounts.factories import ClientUserFactory, SkillFactory, WorkerUserFactory
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, CategoryFactory, JobFactory, SavedJobFactory
from tests.payments.factories import PaymentFactory
from tests.ratings.factories import ReviewFactory
from tools.contracts import ENDPOINTS, UNCACHED

pytestmark = pytest.mark.django_db

SMALL, GROWTH = 2, 12


class World:
    """A client and a worker who have everything every endpoint lists: jobs with
    skills, applications both ways, payments, reviews, saved jobs. ``grow(n)``
    adds ``n`` more of each."""

    def __init__(self):
        self.skills = [SkillFactory(), SkillFactory()]
        self.client = ClientUserFactory()
        self.worker = WorkerUserFactory(skills=self.skills)
        self.category = CategoryFactory()
        self.job = JobFactory(client=self.client, category=self.category, skills=self.skills)
        self.payment = PaymentFactory(payer=self.client, recipient=self.worker)
        self.grow(SMALL)

    def grow(self, n):
        for _ in range(n):
            job = JobFactory(client=self.client, category=CategoryFactory(), skills=[*self.skills, SkillFactory()])
            ApplicationFactory(job=job, worker=self.worker)
            ApplicationFactory(job=self.job)
            SavedJobFactory(user=self.worker, job=job)
            PaymentFactory(payer=self.client, recipient=self.worker)
            ReviewFactory(reviewer=self.client, reviewed=self.worker)
            ReviewFactory(reviewer=self.worker, reviewed=self.client)

    def path(self, endpoint) -> str:
        return endpoint.example_path.format(job=self.job.pk, user=self.worker.pk, payment=self.payment.pk)


def measure(caller, path, cached: bool) -> tuple[int, int]:
    """(queries of the first request, queries of the same request again)."""
    cache.clear()
    counts = []
    for expected in ("MISS", "HIT"):
        with CaptureQueriesContext(connection) as ctx:
            response = caller.get(path)
        assert response.status_code == 200, (path, response.content)
        if cached:
            assert response["X-Cache"] == expected, path
        counts.append(len(ctx.captured_queries))
    return counts[0], counts[1]


CASES = [(e, kind) for e in ENDPOINTS for kind in ("anonymous", "signed_in") if getattr(e, kind) is not None]


@pytest.mark.parametrize("endpoint, kind", CASES, ids=[f"{e.path} {kind}" for e, kind in CASES])
def test_budget_from_the_contract_table(endpoint, kind):
    world = World()
    caller = APIClient() if kind == "anonymous" else auth_client(getattr(world, endpoint.caller))
    budget = getattr(endpoint, kind)
    small = measure(caller, world.path(endpoint), endpoint.cache != UNCACHED)
    world.grow(GROWTH)
    large = measure(caller, world.path(endpoint), endpoint.cache != UNCACHED)
    assert small == large, f"{endpoint.path} {kind}: query count grows with the data: {small} -> {large}"
    assert large == (budget.miss, budget.hit), f"{endpoint.path} {kind}: measured {large}, table {budget}"
