"""Fragments kept in the process (core/cache/kept.py, fast_lookup.lua): a hit
whose entry's tag is the one this process kept is answered with the kept bytes,
after the same validation in the same round trip; a write changes the tag and
the new fragment is sent; the memory is per key material (so per caller), and
bounded."""
import json

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from core.cache.kept import KEPT, KeptFragments
from tests.accounts.factories import WorkerUserFactory
from tests.cache.helpers import one_redis_backend
from tests.conftest import auth_client
from tests.jobs.factories import JobFactory, SavedJobFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _redis_backend():
    return one_redis_backend("fast_lookup.lua runs on one Redis (a Cluster looks up in steps, local memory has no Lua)")


@pytest.fixture
def replies(monkeypatch):
    """The fast path's raw script replies, in order."""
    from core.cache.redis_backend import RedisBackend

    _redis_backend()
    KEPT.clear()
    seen = []
    original = RedisBackend._run

    def recording(self, client, name, keys, args):
        reply = original(self, client, name, keys, args)
        if name == "fast_lookup":
            seen.append(reply)
        return reply

    monkeypatch.setattr(RedisBackend, "_run", recording)
    yield seen
    KEPT.clear()


def data_of(response):
    assert response.status_code == 200
    return json.loads(response.content)["data"]


def test_a_repeated_hit_is_answered_with_the_kept_fragment(replies):
    api_client = APIClient()
    job = JobFactory(title="First title")
    path = f"/api/v1/jobs/{job.pk}/"
    miss = api_client.get(path)
    assert miss["X-Cache"] == "MISS"
    first = api_client.get(path)
    assert first["X-Cache"] == "HIT" and replies[-1][6] == 0 and replies[-1][0], "the entry came over"
    assert len(KEPT) == 1
    second = api_client.get(path)
    assert second["X-Cache"] == "HIT"
    assert replies[-1][6] == 2 and replies[-1][0] == b"", "no bytes of the fragment came over"
    assert second["ETag"] == first["ETag"] and second["Content-Length"] == first["Content-Length"]
    assert data_of(second) == data_of(first) == data_of(miss)


def test_after_a_write_the_new_fragment_is_sent_and_kept(replies):
    api_client = APIClient()
    job = JobFactory(title="Before the write")
    path = f"/api/v1/jobs/{job.pk}/"
    for _ in range(3):
        before = api_client.get(path)
    assert replies[-1][6] == 2
    owner = auth_client(job.client)
    assert owner.patch(path, {"title": "After the write"}, format="json").status_code == 200
    fresh = api_client.get(path)
    assert data_of(fresh)["title"] == "After the write"
    hit = api_client.get(path)
    assert hit["X-Cache"] == "HIT" and replies[-1][6] == 0, "a new tag: the new fragment came over"
    again = api_client.get(path)
    assert replies[-1][6] == 2 and data_of(again)["title"] == "After the write"
    assert again["ETag"] == hit["ETag"] != before["ETag"]


def test_the_memory_is_per_caller(replies):
    """Each user's saved jobs are kept under that user's key material: a user's
    hits never answer with another user's kept bytes."""
    alice, bob = WorkerUserFactory(), WorkerUserFactory()
    SavedJobFactory(user=alice, job=JobFactory(title="Alice's job"))
    SavedJobFactory(user=bob, job=JobFactory(title="Bob's job"))
    path = "/api/v1/users/me/saved-jobs/"
    as_alice, as_bob = auth_client(alice), auth_client(bob)
    for _ in range(4):  # the first two answered by DRF (the token, then the entry, not yet cached)
        titles = [row["title"] for row in data_of(as_alice.get(path))]
        assert titles == ["Alice's job"]
    assert replies[-1][6] == 2
    for _ in range(4):
        titles = [row["title"] for row in data_of(as_bob.get(path))]
        assert titles == ["Bob's job"]
    assert replies[-1][6] == 2
    assert len(KEPT) == 2


@override_settings(RESPONSE_CACHE_KEPT_BYTES=0)
def test_turned_off_every_hit_carries_its_fragment(replies):
    api_client = APIClient()
    job = JobFactory()
    path = f"/api/v1/jobs/{job.pk}/"
    for _ in range(4):
        assert api_client.get(path).status_code == 200
    assert len(KEPT) == 0
    assert [r[6] for r in replies[-2:]] == [0, 0] and all(r[0] for r in replies[-2:])


@override_settings(RESPONSE_CACHE_KEPT_BYTES=100)
def test_the_memory_is_bounded_by_bytes():
    kept = KeptFragments()
    kept.keep(("e", "a"), "t1", b"x" * 60)
    kept.keep(("e", "a"), "t2", b"y" * 70)  # replaces: 70 bytes held
    assert kept.get(("e", "a")) == ("t2", b"y" * 70) and kept.nbytes == 70
    kept.keep(("e", "b"), "t3", b"z" * 40)  # past the bound: dropped, then kept
    assert kept.get(("e", "a")) is None and kept.get(("e", "b")) == ("t3", b"z" * 40)
    assert kept.nbytes == 40 and len(kept) == 1
    kept.keep(("e", "c"), "t4", b"w" * 101)  # larger than the bound: never kept
    assert kept.get(("e", "c")) is None and kept.nbytes == 40


def test_entry_head_reads_the_header_not_the_fragment():
    """valid_entry.lua's entry_head: a short entry whole; a long one up to where
    its fragment starts, however long its header (a second GETRANGE past 4 KB);
    no entry, nil. The entry validates the same from its head."""
    from core.cache.keys import encode_entry
    from core.cache.scripts import lua

    b = _redis_backend()
    client = b._client()
    script = lua("valid_entry") + (
        "local head, whole = entry_head(KEYS[1])\n"
        "if not head then return {-1} end\n"
        "local header, offset = valid_entry(head)\n"
        "return {head, whole and 1 or 0, header and 1 or 0, offset or -1}\n"
    )
    counters = {b.version_key(f"test-head:{i}"): 1000 + i for i in range(120)}
    client.mset({k: v for k, v in counters.items()})
    try:
        for rows, fragment in ((dict(list(counters.items())[:2]), b'"data":1'),
                               (dict(list(counters.items())[:2]), b'"data":"' + b"x" * 9000 + b'"'),
                               (counters, b'"data":"' + b"y" * 9000 + b'"')):
            entry = encode_entry(rows, fragment)
            client.set(b._key("r:test-head"), entry)
            head, whole, valid, offset = client.eval(script, 1, b._key("r:test-head"))
            header_end = len(entry) - len(fragment)
            assert valid == 1 and offset == header_end
            if len(entry) < 4096:
                assert whole == 1 and head == entry
            else:
                assert whole == 0 and header_end <= len(head) < len(entry) and head == entry[: len(head)]
        client.set(next(iter(counters)), 1)  # a row moved: the head no longer validates
        assert client.eval(script, 1, b._key("r:test-head"))[2] == 0
        client.delete(b._key("r:test-head"))
        assert client.eval(script, 1, b._key("r:test-head")) == [-1]
    finally:
        client.delete(*counters, b._key("r:test-head"))
