"""Read floors (core/cache/floors.py): with read replicas, a bump records the
primary's WAL position beside each counter it bumps, and reading versions yields
the largest position a response depends on. Run against Redis (the Lua scripts),
with the replica configuration and the primary's position stubbed."""
import pytest

from core import cache as cache_layer
from core import replicas
from core.cache import floors

pytestmark = [pytest.mark.redis]


@pytest.fixture
def tracked(monkeypatch):
    """Replicas "configured"; the primary's position is whatever the test sets."""
    position = {"now": 1000}
    asked = []

    def primary_lsn():
        asked.append(position["now"])
        return position["now"]

    monkeypatch.setattr(replicas, "enabled", lambda: True)
    monkeypatch.setattr(replicas, "primary_lsn", primary_lsn)
    position["asked"] = asked
    return position


def floor_of(*scopes) -> int | None:
    floors.begin()
    cache_layer.get_versions(scopes)
    return floors.current()


def test_without_replicas_no_floor_is_known(monkeypatch):
    monkeypatch.setattr(replicas, "enabled", lambda: False)
    floors.begin()
    cache_layer.get_versions(["jobs"])
    assert floors.current() is None


def test_a_new_redis_takes_the_primarys_position_once(tracked):
    assert floor_of("jobs") == 1000  # no lsn-max yet: the primary was asked
    tracked["now"] = 5000
    assert floor_of("jobs") == 1000  # lsn-max is set now: not asked again
    assert tracked["asked"] == [1000]


def test_a_bump_raises_the_floor_of_its_scopes_only(tracked):
    assert floor_of("jobs", "job:1") == 1000
    tracked["now"] = 2000
    cache_layer.bump_now({"job:1"})
    assert floor_of("job:1") == 2000
    assert floor_of("jobs", "job:1") == 2000
    # Another scope's write does not raise job:1's floor (nor that of "*", which got
    # lsn-max when first read and is bumped only by fences).
    tracked["now"] = 3000
    cache_layer.bump_now({"job:2"})
    assert floor_of("job:1") == 2000
    assert floor_of("job:2") == 3000


def test_positions_only_grow_when_bumps_arrive_out_of_order(tracked):
    floor_of("job:1")
    tracked["now"] = 9000
    cache_layer.bump_now({"job:1"})
    tracked["now"] = 7000  # an earlier commit whose bump arrives later
    cache_layer.bump_now({"job:1"})
    assert floor_of("job:1") == 9000


def test_a_counter_that_lost_its_position_counts_as_the_largest(tracked):
    floor_of("job:1")
    tracked["now"] = 2000
    cache_layer.bump_now({"job:1"})
    tracked["now"] = 4000
    cache_layer.bump_now({"job:2"})
    cache_layer.backend().delete("lsn:job:1")  # as if evicted
    assert floor_of("job:1") == 4000  # lsn-max: every recorded write


def test_the_row_versions_add_to_the_floor(tracked):
    floor_of("jobs")
    floor_of("jobs")  # lsn-max known now: the counters' positions are set to it (1000)
    tracked["now"] = 6000
    cache_layer.bump_now({"user:7"})
    floors.begin()
    cache_layer.get_versions(["jobs"])
    assert floors.current() == 1000
    cache_layer.row_versions(["user:7"])
    assert floors.current() == 6000


def test_an_unknown_floor_reads_the_primary(tracked):
    floors.begin()
    floors.note(10)
    floors.note(None)  # e.g. the fast path could not tell
    assert floors.current() is None


def test_a_read_that_stores_nothing_drops_the_companions_it_created(tracked):
    """A 404 of a row that does not exist leaves no key behind, with replicas too:
    the counters its read created go, and so do their lsn: companions."""
    from core.cache import keys as cache_keys
    from core.cache import versions

    b = cache_layer.backend()
    floor_of("jobs")
    floor_of("jobs")  # lsn-max, the counters of "jobs" and "*" and their companions exist before
    before = set(b.scan_prefix(""))
    cache_keys.forget_created()
    assert floor_of("job:987654321") == 1000
    created = set(b.scan_prefix("")) - before
    assert any(k.startswith(cache_keys.LSN_PREFIX) for k in created), created
    versions.drop_created()
    assert set(b.scan_prefix("")) == before
