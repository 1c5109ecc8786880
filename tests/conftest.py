"""Shared fixtures: API clients per role, cache isolation, database markers, and
the test-wide N+1 guard."""
import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.accounts.factories import ClientUserFactory, StaffUserFactory, WorkerUserFactory
from tests.perf.n_plus_one_guard import collect_n_plus_one

USES_POSTGRES = connection.vendor == "postgresql"  # ENGINE is django-prometheus's wrapper
USES_REDIS = settings.CACHE_IS_REDIS  # REDIS_URL, Sentinel or Cluster


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "postgres" in item.keywords and not USES_POSTGRES:
            item.add_marker(pytest.mark.skip(reason="needs DATABASE_URL=postgres://… (run in CI's second pass)"))
        if "redis" in item.keywords and not USES_REDIS:
            item.add_marker(pytest.mark.skip(reason="needs REDIS_URL=redis://… (run in CI's second pass)"))


def pytest_runtest_setup(item):
    """tests/prerequisites.py: under CI=true a missing prerequisite fails the test
    (the skip marks above, evaluated first, still skip a test outside its pass)."""
    missing = item.get_closest_marker("missing_prerequisite")
    if missing:
        pytest.fail(f"CI=true and a prerequisite is missing: {missing.args[0]}", pytrace=False)


@pytest.fixture(autouse=True)
def _isolated_cache():
    """Each test starts with an empty cache (only this run's keys: the prefix is
    per process, so a parallel run against the same Redis is not disturbed)."""
    _clear_cache()
    yield
    _clear_cache()


def _clear_cache():
    from core.throttling import local_cache

    if USES_REDIS:
        cache.delete_pattern("*")  # test-only; scoped to this run's KEY_PREFIX
    else:
        cache.clear()
    local_cache.clear()  # the throttles' per-process fallback


def auth_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    client.user = user
    return client


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def client_user(db):
    return ClientUserFactory()


@pytest.fixture
def worker_user(db):
    return WorkerUserFactory()


@pytest.fixture
def staff_user(db):
    return StaffUserFactory()


@pytest.fixture
def as_client(client_user):
    return auth_client(client_user)


@pytest.fixture
def as_worker(worker_user):
    return auth_client(worker_user)


@pytest.fixture
def as_staff(staff_user):
    return auth_client(staff_user)


@pytest.fixture
def db_vendor():
    return connection.vendor


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """The test-wide N+1 guard (tests/perf/n_plus_one_guard.py): an N+1 that
    django-zeal sees in any request a test makes fails the test."""
    with collect_n_plus_one():
        return (yield)
