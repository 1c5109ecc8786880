"""The plan checker of ``manage.py explain_plans`` (PostgreSQL only).

The 100,000-job proof itself runs in ``make explain`` (a few minutes: too slow for
CI). Here, on real PostgreSQL plans at a small scale: every probe still answers 200
(the probes follow the API), every statement gets a plan, and the checker tells a
sequential scan of a big table from a bounded one and from an index scan. At this
size the planner rightly prefers sequential scans, so no plan choice is asserted."""
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from tools.management.commands.explain_plans import (
    Statement,
    build_probes,
    explain,
    findings,
    pick_targets,
    run_probes,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def seeded():
    call_command("seed", jobs=60, stdout=StringIO())


def test_every_probe_answers_and_every_statement_is_explained(seeded):
    probes = build_probes(pick_targets())
    statements, broken = run_probes(probes)
    assert broken == []
    assert {st.probe for st in statements} == {p.label for p in probes}
    for st in statements:
        assert st.plan["Plan"]["Node Type"]
        assert st.scans, st.sql
    # the page COUNT of every list is the capped one
    counts = [st for st in statements if st.kind == "count"]
    assert counts and all("LIMIT 10001" in st.sql for st in counts)


def _table(label):
    from django.apps import apps

    return apps.get_model(label)._meta.db_table


def test_checker_fails_an_unbounded_seq_scan_of_a_big_table(seeded):
    jobs = _table("jobs.Job")
    st = explain(Statement("no index on description", f'SELECT id FROM "{jobs}" WHERE description = %s', ("x",)))
    assert [s.node for s in st.scans] == ["Seq Scan"]
    failures, _ = findings([st])
    assert len(failures) == 1 and "Seq Scan on " + jobs in failures[0]


def test_checker_accepts_a_bounded_seq_scan_under_a_limit(seeded):
    jobs = _table("jobs.Job")
    sql = f'SELECT COUNT(*) FROM (SELECT id FROM "{jobs}" LIMIT 11) subquery'
    st = explain(Statement("capped count", sql, ()))
    assert any(s.node == "Seq Scan" and s.under_limit for s in st.scans)
    assert findings([st]) == ([], [])
    # the same scan, when it reads more rows than the bound, fails
    failures, _ = findings([st], bounded_rows=5)
    assert failures


def test_checker_accepts_an_index_scan(seeded):
    jobs = _table("jobs.Job")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # force the index at this size
        st = explain(Statement("by pk", f'SELECT id, title FROM "{jobs}" WHERE id = %s', (1,)))
    assert st.scans[0].index and st.scans[0].node in ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
    assert findings([st]) == ([], [])
