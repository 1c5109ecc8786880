"""The request path's own connection (core/cache/held.py): several commands in
one send, an error reply that drops the connection, a cache miss of the job list
that never checks a connection out of redis-py's pool, and the pooled connection
made ready for bumps. On one Redis only (Sentinel and Cluster use their pools)."""
import uuid

import pytest
import redis
from rest_framework.test import APIClient

from tests.cache.helpers import one_redis_backend
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _redis_backend():
    return one_redis_backend("the held connection is for one Redis (Sentinel and Cluster use their pools)")


@pytest.fixture
def sends(monkeypatch):
    """The packed sends on held connections (a list of the commands' bytes per send)."""
    seen = []
    original = redis.connection.AbstractConnection.send_packed_command

    def recording(self, command, check_health=True):
        seen.append(command if isinstance(command, list) else [command])
        return original(self, command, check_health=check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", recording)
    return seen


def test_a_pipeline_is_one_send_and_its_replies_in_order(sends):
    b = _redis_backend()
    key = b._key(f"held-test:{uuid.uuid4().hex}")
    client = b._client()
    b._held.pipeline(client, [("PING",)])  # connected first (the handshake is its own send)
    sends.clear()
    replies = b._held.pipeline(client, [("SET", key, b"1", "EX", 60), ("INCR", key), ("GET", key)])
    assert replies == [b"OK", 2, b"2"]
    assert len(sends) == 1 and len(sends[0]) == 3


def test_an_error_reply_raises_and_the_connection_starts_over():
    b = _redis_backend()
    key = b._key(f"held-test:{uuid.uuid4().hex}")
    client = b._client()
    with pytest.raises(redis.exceptions.ResponseError):
        b._held.pipeline(client, [("SET", key, b"x", "EX", 60), ("INCR", key), ("GET", key)])
    conn = b._held.connection(client)
    assert conn._sock is None  # dropped: the reply after the error was never read
    assert b._held.pipeline(client, [("GET", key)]) == [b"x"]  # the SET ran; a new connection reads it


def test_a_job_list_miss_takes_no_connection_from_the_pool(monkeypatch, settings):
    b = _redis_backend()
    settings.RESPONSE_CACHE_KEY_EXTRA_PARAMS = ("_b",)  # a new entry per marker, as the bench's misses
    JobFactory.create_batch(3)
    api = APIClient()
    assert api.get("/api/v1/jobs/", {"_b": "warm"}).status_code == 200  # the list's total kept (counts.py)
    pool = b._client().connection_pool
    checkouts = []
    original = pool.get_connection

    def counting(*args, **kwargs):
        checkouts.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", counting)
    for marker in ("a", "b"):
        response = api.get("/api/v1/jobs/", {"_b": marker})
        assert response.status_code == 200 and response["X-Cache"] == "MISS"
        assert api.get("/api/v1/jobs/", {"_b": marker})["X-Cache"] == "HIT"
    assert checkouts == []


def test_a_new_held_connection_leaves_a_connection_made_in_the_pool():
    from core.cache.held import HeldConnections

    b = _redis_backend()
    client = redis.Redis(connection_pool=redis.ConnectionPool(**b._client().connection_pool.connection_kwargs))
    held = HeldConnections()
    assert held.connection(client) is not None
    ready = client.connection_pool._available_connections
    assert len(ready) == 1 and ready[0]._sock is not None  # a bump sent now needs no handshake
    client.connection_pool.disconnect()
