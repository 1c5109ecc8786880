"""Query budgets of the accounts endpoints (see the docstrings of accounts/views.py
and UserQuerySet.for_me / for_public, SkillQuerySet.for_list): the same number of
queries at two data sizes, at or under the budget. Every measured request is a
cache MISS (the cache is cleared first); repeated GETs are HITs: 0 queries when
anonymous, only the token lookup with a token."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.accounts.factories import SkillFactory, WorkerUserFactory
from tests.conftest import auth_client
from tests.perf.budgets import queries_of
from tools.contracts import miss_budget

pytestmark = pytest.mark.django_db

ME = "/api/v1/users/me/"


def worker_with_skills(count):
    return WorkerUserFactory(skills=[SkillFactory() for _ in range(count)])


def test_me_budget_3_at_1_and_20_skills():
    counts = []
    for size in (1, 20):
        caller = auth_client(worker_with_skills(size))
        count, body = queries_of(caller, ME)
        assert len(body["data"]["profile"]["skills"]) == size
        counts.append(count)
        # A HIT costs only the token lookup.
        hit, _ = queries_of(caller, ME, expect_cache="HIT", clear=False)
        assert hit == 1
    assert counts[0] == counts[1], f"query count grows with the data: {counts}"
    assert counts[1] <= 3


@pytest.mark.parametrize("authenticated, budget", [(a, miss_budget("/users/{id}/", signed_in=a)) for a in (False, True)])
def test_public_user_budget_at_1_and_20_skills(authenticated, budget):
    caller = auth_client(WorkerUserFactory()) if authenticated else APIClient()
    counts = []
    for size in (1, 20):
        user = worker_with_skills(size)
        count, body = queries_of(caller, f"/api/v1/users/{user.pk}/")
        assert len(body["data"]["profile"]["skills"]) == size
        counts.append(count)
        hit, _ = queries_of(caller, f"/api/v1/users/{user.pk}/", expect_cache="HIT", clear=False)
        assert hit == (1 if authenticated else 0)
    assert counts[0] == counts[1], f"query count grows with the data: {counts}"
    assert counts[1] <= budget


@pytest.mark.parametrize("authenticated, budget", [(a, miss_budget("/skills/", signed_in=a)) for a in (False, True)])
def test_skill_list_budget_at_3_and_40_skills(authenticated, budget):
    caller = auth_client(WorkerUserFactory()) if authenticated else APIClient()
    for _ in range(3):
        SkillFactory()
    small, small_body = queries_of(caller, "/api/v1/skills/?per_page=100")
    for _ in range(37):
        SkillFactory()
    large, large_body = queries_of(caller, "/api/v1/skills/?per_page=100")
    assert len(small_body["data"]) == 3 and len(large_body["data"]) == 40
    assert small == large, f"query count grows with the data: {small} -> {large}"
    assert large <= budget
    hit, _ = queries_of(caller, "/api/v1/skills/?per_page=100", expect_cache="HIT", clear=False)
    assert hit == (1 if authenticated else 0)


def test_patch_me_does_not_grow_with_skills():
    """PATCH /users/me/ with 2 or 20 skills: the same number of queries (skills
    resolved in one query, links written in bulk)."""
    counts = []
    for size in (2, 20):
        skills = [SkillFactory() for _ in range(size)]
        caller = auth_client(WorkerUserFactory())
        with CaptureQueriesContext(connection) as ctx:
            response = caller.patch(ME, {"first_name": "X", "profile": {"city": "Y", "skills": [s.name for s in skills]}},
                                    format="json")
        assert response.status_code == 200
        assert len(response.json()["data"]["profile"]["skills"]) == size
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], f"query count grows with the data: {counts}"
