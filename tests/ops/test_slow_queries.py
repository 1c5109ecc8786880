"""Slow queries, named (core/db_instrumentation.py): a statement over SLOW_QUERY_MS
is logged once with the request id, endpoint, duration and the SQL without its
values, and counted per endpoint; fast statements cost no line and no count."""
import logging

import pytest
from django.db import connection
from django.test import Client, override_settings
from prometheus_client import REGISTRY

from core import db_instrumentation
from core.db_instrumentation import elide_sql, slow_query_wrapper
from core.middleware import _QueryCounter

from .urls import slow_sql

pytestmark = [pytest.mark.urls("tests.ops.urls")]

SLOW_LOGGER = "shiftboard.db.slow"


def slow_count(endpoint: str) -> float:
    return REGISTRY.get_sample_value("shiftboard_db_slow_queries_total", {"endpoint": endpoint}) or 0.0


def slow_records(caplog):
    return [r for r in caplog.records if r.name == SLOW_LOGGER]


@pytest.mark.django_db
def test_a_slow_statement_is_logged_once_with_request_id_endpoint_and_counted(caplog):
    """Default threshold (100 ms), a 150 ms statement in a request."""
    assert db_instrumentation._threshold_seconds() == 0.1
    before = slow_count("ops-test-slow")
    caplog.set_level(logging.WARNING, logger=SLOW_LOGGER)
    response = Client().get("/ops-test/slow/?ms=150", HTTP_X_REQUEST_ID="slow-req-1")
    assert response.status_code == 200
    records = slow_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    rec = records[0]
    assert rec.levelname == "WARNING"
    assert rec.endpoint == "ops-test-slow"
    assert rec.duration_ms >= 150
    assert rec.db == "default"
    # The request id comes from the request's context (the log filter stamps it).
    from core.logging import RequestContextFilter

    assert RequestContextFilter().filter(rec) and rec.request_id == "slow-req-1"
    # The SQL names the statement, but neither the bound value nor inline literals.
    assert "sleep" in rec.sql and "%s" in rec.sql
    assert "150" not in rec.sql and "inline-secret-literal" not in rec.sql and "4242" not in rec.sql
    assert "ops-test-slow" in rec.getMessage() and "ms" in rec.getMessage()
    assert slow_count("ops-test-slow") == before + 1


@pytest.mark.django_db
def test_fast_statements_are_neither_logged_nor_counted(caplog):
    before = slow_count("ops-test-fast")
    caplog.set_level(logging.WARNING, logger=SLOW_LOGGER)
    assert Client().get("/ops-test/fast/").status_code == 200
    assert slow_records(caplog) == []
    assert slow_count("ops-test-fast") == before


@pytest.mark.django_db
def test_a_real_endpoint_under_a_low_threshold_is_named(caplog, client_user):
    """Threshold lowered to 1 ms, the real job list: whatever statement of it takes
    1 ms or more (on SQLite: forced by a 5 ms sleep first) is named ``job-list``."""
    before = slow_count("job-list")
    caplog.set_level(logging.WARNING, logger=SLOW_LOGGER)
    with override_settings(SLOW_QUERY_MS=1):
        slow_sql(5)  # outside a request: endpoint <no request>
        response = Client().get("/api/v1/jobs/", HTTP_X_REQUEST_ID="joblist-1")  # a miss: each test starts with an empty cache
    assert response.status_code == 200
    records = slow_records(caplog)
    assert records[0].endpoint == "<no request>"
    job_list = [r for r in records if r.endpoint == "job-list"]
    assert slow_count("job-list") == before + len(job_list)


@pytest.mark.django_db
def test_threshold_zero_turns_the_hook_off(caplog):
    caplog.set_level(logging.WARNING, logger=SLOW_LOGGER)
    connection.ensure_connection()
    assert slow_query_wrapper in connection.execute_wrappers
    with override_settings(SLOW_QUERY_MS=0):
        assert slow_query_wrapper not in connection.execute_wrappers
        slow_sql(120)
    assert slow_records(caplog) == []
    assert slow_query_wrapper in connection.execute_wrappers


@pytest.mark.django_db(transaction=True)
def test_the_hook_survives_a_connection_opened_inside_a_timed_request():
    """The Server-Timing counter (an execute_wrapper() context) is entered before the
    request's connection exists; the hook, installed when the connection is made,
    goes first in the list, so the counter's exit removes the counter, not the hook."""
    connection.close()
    with override_settings(PERF_HEADERS=True):
        response = Client().get("/ops-test/fast/")
    assert "Server-Timing" in response
    assert slow_query_wrapper in connection.execute_wrappers
    assert not any(isinstance(w, _QueryCounter) for w in connection.execute_wrappers)


def test_elide_sql():
    sql = (
        "SELECT \"jobs_job\".\"id\" FROM \"jobs_job\" WHERE (\"jobs_job\".\"city\" = %s AND "
        "\"jobs_job\".\"id\" IN (%s, %s, %s, %s, %s, %s) AND note = 'it''s secret' AND t1.x > 12.5)\n  LIMIT 21"
    )
    out = elide_sql(sql)
    assert out == (
        "SELECT \"jobs_job\".\"id\" FROM \"jobs_job\" WHERE (\"jobs_job\".\"city\" = %s AND "
        "\"jobs_job\".\"id\" IN (%s, ...) AND note = ? AND t1.x > ?) LIMIT ?"
    )
    assert len(elide_sql("SELECT " + "x, " * 2000)) <= db_instrumentation.MAX_SQL_CHARS + 4
