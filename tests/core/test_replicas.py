"""The replica router's decisions (core.replicas): writes, locking reads and reads
in a transaction never go to a replica; other reads go there only under a read
floor the replica has replayed; a replica that is behind or down is skipped at
once. (Against real engines: tests/scale/.)"""
import math
import time

import pytest
from django.db import router, transaction
from django.test import override_settings
from prometheus_client import REGISTRY

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


def up_gauge() -> float | None:
    return REGISTRY.get_sample_value("shiftboard_db_replica_up", {"alias": REPLICA})


def test_a_metrics_write_that_fails_neither_fails_the_read_nor_stops_the_probe(one_replica, monkeypatch, settings):
    """Marking a replica down exports its gauge; if that write fails (a full disk,
    a missing multiprocess directory) the read still goes to the primary and the
    probe still brings the replica back."""
    settings.REPLICA_PROBE_SECONDS = 0.05
    answers = {"up": False}

    def flaky(alias):
        if not answers["up"]:
            raise OSError("no answer")
        return 5000

    def broken_export(alias, up):
        raise OSError("No space left on device")

    monkeypatch.setattr(replicas, "replayed_lsn", flaky)
    monkeypatch.setattr("core.health.export_replica", broken_export)
    with replicas.reads_at(0):
        assert Job.objects.all().db == "default"
        assert replicas.is_down(REPLICA)
        answers["up"] = True
        deadline = time.monotonic() + 10
        while replicas.is_down(REPLICA) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not replicas.is_down(REPLICA)


def test_a_failed_replica_is_skipped_until_the_probe_finds_it_answering(one_replica, monkeypatch, settings):
    settings.REPLICA_PROBE_SECONDS = 0.05
    answers = {"up": False}

    def flaky(alias):
        one_replica["calls"].append(alias)
        if not answers["up"]:
            raise OSError("no answer")
        return 5000

    monkeypatch.setattr(replicas, "replayed_lsn", flaky)
    with replicas.reads_at(0):
        assert Job.objects.all().db == "default"
        assert replicas.is_down(REPLICA)
        assert replicas.lag_report()[REPLICA]["reason"] == "OSError('no answer')"  # not asked: reported as marked
        # /metrics says so at once, without waiting for a readiness probe.
        assert up_gauge() == 0.0
        answers["up"] = True
        deadline = time.monotonic() + 10
        while (replicas.is_down(REPLICA) or up_gauge() != 1.0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not replicas.is_down(REPLICA)  # the probe (another thread) asked it, and it answered
        assert up_gauge() == 1.0
        assert math.isnan(REGISTRY.get_sample_value("shiftboard_db_replica_lag_seconds", {"alias": REPLICA}))
        assert replicas._states[REPLICA].replayed == 5000
        assert Job.objects.all().db == REPLICA


def replicating_gauge(alias=REPLICA) -> float | None:
    return REGISTRY.get_sample_value("shiftboard_db_replica_replicating", {"alias": alias})


def test_a_replica_promoted_since_its_last_check_is_asked_again_and_skipped(one_replica, monkeypatch, settings):
    """A replica's last known position is past the floor, but it was last asked more
    than REPLICA_PROBE_SECONDS ago: the next read asks it again, and a server that
    answers as promoted is skipped (reads go to the primary), its positions
    forgotten, until the probe finds it following the primary again."""
    settings.REPLICA_PROBE_SECONDS = 0.05
    with replicas.reads_at(500):
        assert Job.objects.all().db == REPLICA
        assert Job.objects.all().db == REPLICA
        assert one_replica["calls"] == [REPLICA]  # within the probe interval: not asked again
        promoted = {"yes": True}

        def answer(alias):
            one_replica["calls"].append(alias)
            if promoted["yes"]:
                raise replicas.NotReplicating("not in recovery and not the primary: promoted")
            return 5000

        monkeypatch.setattr(replicas, "replayed_lsn", answer)
        time.sleep(0.06)
        assert Job.objects.all().db == "default"
        assert Job.objects.all().db == "default"
        assert one_replica["calls"] == [REPLICA, REPLICA]  # skipped since: not asked by reads
        state = replicas._states[REPLICA]
        assert state.status == "not_replicating" and state.replayed == -1
        report = replicas.lag_report()[REPLICA]
        assert report["status"] == "not_replicating" and "promoted" in report["reason"]
        assert replicating_gauge() == 0.0 and up_gauge() == 1.0  # it answers; it is not ours
        promoted["yes"] = False  # re-attached to the primary (a standby again)
        deadline = time.monotonic() + 10
        while replicas.is_down(REPLICA) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not replicas.is_down(REPLICA)
        assert replicating_gauge() == 1.0
        assert Job.objects.all().db == REPLICA


@pytest.mark.postgres
def test_a_mirror_of_the_primary_is_a_replica_a_promoted_server_is_not(monkeypatch):
    """The test suite's stand-in (a replica alias on the primary server itself, here
    ``default``) passes the check on a real connection: not in recovery, but the
    primary's system identifier and postmaster. A server not in recovery with the
    primary's system identifier and a postmaster of its own -- a pg_basebackup copy
    that was promoted -- does not: the router reads the primary instead, and
    lag_report says why."""
    monkeypatch.setattr(replicas, "replica_aliases", lambda: ["default"])
    replicas._states.clear()
    try:
        position = replicas.replayed_lsn("default")
        assert position > 0
        assert replicas.pick_replica(position) == "default"
        mirror = replicas.lag_report()["default"]
        assert mirror["status"] == "ok" and mirror["lag_seconds"] == 0.0 and mirror["lag_bytes"] >= 0

        sysid, started = replicas._primary_who(refresh=True)
        # As if the replica alias's server had a postmaster of its own: what a promoted copy looks like.
        monkeypatch.setattr(replicas, "_primary_who", lambda refresh=False: (sysid, str(float(started) - 60)))
        replicas._states.clear()
        with pytest.raises(replicas.NotReplicating, match="promoted"):
            replicas.replayed_lsn("default")
        assert replicas.pick_replica(0) is None  # the primary reads
        assert replicas._states["default"].status == "not_replicating"
        replicas._states.clear()
        report = replicas.lag_report()["default"]
        assert report["status"] == "not_replicating" and report["lag_bytes"] is None
        assert f"system identifier {sysid}" in report["reason"]
        assert replicas.pick_replica(0) is None  # lag_report marked it for the router too
    finally:
        replicas._states.clear()


def test_a_read_that_fails_on_a_replica_is_read_again_on_the_primary(one_replica):
    used = []

    def build():
        alias = Job.objects.all().db
        used.append(alias)
        if alias != "default":
            replicas.mark_down(alias, "hung")  # what the replicas' backend does, then raises
            raise replicas.ReplicaUnavailable(f"replica {alias}: hung")
        return "built"

    assert replicas.read_at(0, build) == "built"
    assert used == [REPLICA, "default"]
    assert replicas.read_at(0, build) == "built" and used[2:] == ["default"]  # skipped while down


def test_a_wait_past_the_replica_read_timeout_is_cut_short():
    """core/replica_db's watchdog shuts down the socket of a wait that outlives its
    deadline: the blocked read returns instead of waiting for an answer that never
    comes (a server stopped with SIGSTOP)."""
    import socket
    from types import SimpleNamespace

    from core.replica_db.base import bounded

    ours, server = socket.socketpair()
    ours.settimeout(10)  # a broken watchdog fails the test instead of hanging it
    db = SimpleNamespace(connection=ours, timed_out=False)
    try:
        with bounded(db, seconds=0.1):
            assert ours.recv(1) == b""  # shut down: end of stream, nothing was ever sent
        assert db.timed_out
        db.timed_out = False
        with bounded(db, seconds=5):  # an answer in time: nothing happens
            pass
        assert not db.timed_out
    finally:
        ours.close()
        server.close()


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
