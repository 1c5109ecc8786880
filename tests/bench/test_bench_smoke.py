"""Smoke tests of the benchmark's parts that run without its own packages
(cachalot, matplotlib): the baselines and the floor behind bench/urls.py, the
bench's choice of databases, and the mix driver's reading of both envelopes."""
import json

import pytest
from django.urls import reverse

from bench import mix, run
from tests.accounts.factories import SkillFactory
from tests.jobs.factories import JobFactory
from tests.perf.n_plus_one_guard import NPlusOneFound, collect_n_plus_one


def _first_job(response):
    return response.json()["results"][0]


@pytest.mark.django_db
@pytest.mark.urls("bench.urls")
@pytest.mark.filterwarnings("ignore:N\\+1 detected")  # zeal's report of the naive view, expected here
def test_baselines_serve_shiftboards_job_fields_and_naive_is_the_n_plus_one_one(anon, django_assert_num_queries):
    skill = SkillFactory()
    JobFactory.create_batch(3, skills=[skill])

    shiftboard = anon.get("/api/v1/jobs/").json()["data"][0]
    with django_assert_num_queries(3):  # jobs, their skills, the COUNT: whatever the page size
        tuned = anon.get("/bench/tuned/jobs/")
    assert tuned.status_code == 200
    assert set(_first_job(tuned)) == set(shiftboard)
    assert _first_job(tuned)["skills"] == [skill.name]

    # The naive baseline is meant to query per row: the test-wide guard must see it.
    with pytest.raises(NPlusOneFound):
        with collect_n_plus_one():
            naive = anon.get("/bench/naive/jobs/")
    assert naive.json()["results"] == tuned.json()["results"]
    assert naive.json()["count"] == 3


@pytest.mark.django_db
@pytest.mark.urls("bench.urls")
def test_floor_answers_the_requested_number_of_bytes(anon):
    response = anon.get(reverse("bench-floor"), {"bytes": 5000})
    assert response.status_code == 200
    assert len(response.content) == 5000
    json.loads(response.content)  # well-formed JSON, as the page it stands in for


@pytest.mark.django_db
@pytest.mark.urls("bench.urls")
def test_floor_after_a_round_trip_answers_the_same_bytes_after_one_script_call(anon, monkeypatch):
    from core.cache.backends import backend

    calls = []
    if hasattr(backend(), "bare_round_trip"):  # Redis: the real round trip, counted
        real = backend().bare_round_trip
        monkeypatch.setattr(backend(), "bare_round_trip", lambda: calls.append(real()))
    plain = anon.get(reverse("bench-floor"), {"bytes": 5000})
    tripped = anon.get(reverse("bench-floor"), {"bytes": 5000, "round_trip": "1"})
    assert tripped.status_code == 200 and tripped.content == plain.content
    assert calls == ([None] if hasattr(backend(), "bare_round_trip") else [])
    assert run.round_trip_floor([run.load.Req("/bench/floor/?bytes=7")]) == [
        run.load.Req("/bench/floor/?bytes=7&round_trip=1")]


def test_bench_never_uses_the_callers_database_or_redis_db(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://app:pw@db.internal:6432/production")
    monkeypatch.setenv("REDIS_URL", "redis://cache.internal:6379/0")
    monkeypatch.delenv("BENCH_DB_NAME", raising=False)
    monkeypatch.delenv("BENCH_REDIS_DB", raising=False)
    assert run.bench_database_url() == "postgres://app:pw@db.internal:6432/shiftboard_bench"
    assert run.bench_redis_url() == "redis://cache.internal:6379/8"

    monkeypatch.setenv("DATABASE_URL", "sqlite:///db.sqlite3")
    with pytest.raises(SystemExit):
        run.bench_database_url()


def test_mix_driver_reads_the_envelope_and_plain_drf_alike():
    envelope = b'{"success": true, "data": [{"id": 1}], "pagination": {}, "message": null}'
    plain = b'{"count": 1, "next": null, "previous": null, "results": [{"id": 1}]}'
    assert mix.payload(envelope) == mix.payload(plain) == [{"id": 1}]
    assert mix.payload(b'{"success": true, "data": {"id": 7}}') == {"id": 7}
    assert mix.payload(b"not json") is None


def test_wrk_script_sends_if_none_match_only_for_revalidations():
    from bench import load

    script = load.lua_script([load.Req("/api/v1/jobs/", None, '"e1"'), load.Req("/api/v1/payments/", "t0k")], False)
    assert '{"/api/v1/jobs/",nil,"\\"e1\\""}' in script
    assert '{"/api/v1/payments/","Token t0k",nil}' in script
    assert 'headers["If-None-Match"] = r[3]' in script
    assert "not_modified" in script
