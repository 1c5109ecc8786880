"""The replica router's decisions (core.replicas): writes, locking reads and reads
in a transaction never go to a replica; other reads go there only under a read
floor the replica has replayed; a replica that is behind or down is skipped at
once. (Against real engines: tests/scale/.)"""
import time

import pytest
from django.db import router, transaction
from django.test import override_settings

from accounts.models import User
from core import replicas
from jobs.models import Application, Job

# transaction=True: a test case wrapped in an atomic block would read the primary anyway.
pytestmark = pytest.mark.django_db(transaction=True)

REPLICA = "replica_0"


@pytest.fixture
def one_replica(monkeypatch):
    """A replica alias the router knows, whose replay position the test sets (no
    query ever reaches it: an unconfigured alias would raise if one did)."""
    monkeypatch.setattr(replicas, "replica_aliases", lambda: [REPLICA])
    calls = []

    def replayed(alias):
        calls.append(alias)
        return state["replayed"]

    state = {"replayed": 1000, "calls": calls}
    monkeypatch.setattr(replicas, "replayed_lsn", replayed)
    replicas._states.clear()
    with override_settings(DATABASE_ROUTERS=["core.replicas.ReplicaRouter"]):
        yield state
    replicas._states.clear()


def test_without_a_floor_every_read_goes_to_the_primary(one_replica):
    assert Job.objects.all().db == "default"
    assert router.db_for_read(User) == "default"
    assert one_replica["calls"] == []


def test_under_a_floor_the_replica_reads_when_it_has_replayed_it(one_replica):
    with replicas.reads_at(1000):
        assert Job.objects.all().db == REPLICA
        assert router.db_for_read(Application) == REPLICA
    # The position seen is remembered (positions only grow): no second question.
    assert one_replica["calls"] == [REPLICA]


def test_a_replica_behind_the_floor_is_not_used_or_waited_for(one_replica):
    with replicas.reads_at(1001):
        started = time.monotonic()
        assert Job.objects.all().db == "default"
        assert Job.objects.all().db == "default"
        assert time.monotonic() - started < 0.5
    # Asked once; the second read within RECHECK_SECONDS did not ask again.
    assert one_replica["calls"] == [REPLICA]


def test_select_for_update_goes_to_the_primary_even_under_a_floor(one_replica):
    with replicas.reads_at(0):
        assert Job.objects.all().db == REPLICA
        assert Job.objects.select_for_update().db == "default"
        assert Job.objects.select_for_update().filter(pk=1).db == "default"
        assert Job.objects.filter(pk=1).select_for_update(of=("self",)).db == "default"


def test_writes_go_to_the_primary_and_pin_the_context(one_replica):
    with replicas.reads_at(0):
        assert Job.objects.all().db == REPLICA
        assert router.db_for_write(Job) == "default"
        assert User.objects.all().db == "default"  # reads our own write from now on
    with replicas.reads_at(0):
        assert Job.objects.all().db == REPLICA  # a new context is not pinned


def test_a_write_inside_a_floor_runs_on_the_primary(one_replica, client_user):
    with replicas.reads_at(0):
        client_user.first_name = "Pinned"
        client_user.save()  # would raise ConnectionDoesNotExist if routed to the replica
        assert User.objects.filter(pk=client_user.pk).values_list("first_name", flat=True)[0] == "Pinned"


def test_reads_in_an_atomic_block_go_to_the_primary(one_replica):
    with replicas.reads_at(0):
        with transaction.atomic():
            assert Job.objects.all().db == "default"
            assert router.db_for_read(User) == "default"
        assert Job.objects.all().db == REPLICA


def test_a_replica_that_is_down_is_skipped_quickly_and_for_a_while(one_replica, monkeypatch):
    def down(alias):
        one_replica["calls"].append(alias)
        raise OSError("connection refused")

    monkeypatch.setattr(replicas, "replayed_lsn", down)
    with replicas.reads_at(0):
        assert Job.objects.all().db == "default"
        time.sleep(replicas.RECHECK_SECONDS * 2)
        assert Job.objects.all().db == "default"
    assert one_replica["calls"] == [REPLICA]  # not asked again while marked down
    assert replicas._states[REPLICA].down_until > time.monotonic()


def test_migrations_only_on_the_primary():
    r = replicas.ReplicaRouter()
    assert r.allow_migrate("default", "jobs")
    assert not r.allow_migrate(REPLICA, "jobs")


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ('SELECT "jobs_job"."id" FROM "jobs_job"', "read"),
        ('SELECT "jobs_job"."id" FROM "jobs_job" WHERE id = 1 FOR UPDATE', "locking_read"),
        ('SELECT 1 FROM "jobs_job" FOR NO KEY UPDATE OF "jobs_job"', "locking_read"),
        ('INSERT INTO "jobs_job" ("title") VALUES (%s)', "write"),
        ('UPDATE "jobs_job" SET "title" = %s', "write"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "read"),
    ],
)
def test_statement_kinds_for_the_per_database_metric(sql, kind):
    assert replicas._statement_kind(sql) == kind
