"""The measurement of the query-budget tests (tests/perf/test_*_budgets.py)."""
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext


def queries_of(client, path, expect_cache="MISS", clear=True):
    """GET ``path`` (after emptying the cache, unless ``clear`` is False): the
    number of queries it ran and its JSON body; it must answer 200 with
    ``X-Cache: expect_cache``."""
    if clear:
        cache.clear()
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, response.content
    assert response["X-Cache"] == expect_cache
    return len(ctx.captured_queries), response.json()
