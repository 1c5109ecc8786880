"""The entry format (keys.encode_entry, valid_entry.lua): the row counters' keys as
a JSON array, their versions joined, the ETag stored in front. Python and the Lua
check read the same entries the same way, and anything that is not such an entry
is a miss, never an error."""
import pytest

from core.cache.keys import decode_entry, encode_entry, entry_stored_tag, entry_tag, row_header
from core.cache.scripts import lua
from tests.cache.helpers import one_redis_backend

ODD_SCOPES = ["job:1", 'quote"and\\slash', "comma,in:name", "tab\there", "naïve:7"]


def test_an_entry_decodes_to_what_was_encoded():
    rows = {f"sb:v:{scope}": 1000 + i for i, scope in enumerate(ODD_SCOPES)}
    tag = entry_tag("sb:r:list:" + "a" * 40, row_header(rows))
    for fragment in (b'"data":[]', b"", b'"x":"line\nbreak 1 2 abc\n"'):
        value = encode_entry(rows, fragment, tag)
        decoded, rest = decode_entry(value)
        assert decoded == {k: str(v) for k, v in rows.items()} and rest == fragment
        assert entry_stored_tag(value) == tag
    empty = encode_entry({}, b'"data":1')
    assert empty.startswith(b"0 0 \n") and decode_entry(empty) == ({}, b'"data":1')
    assert entry_stored_tag(empty) == ""


@pytest.fixture
def redis_entry():
    b = one_redis_backend("valid_entry.lua runs on one Redis (a Cluster checks in Python, local memory has no Lua)")
    client = b._client()
    key = b._key("r:test-format")
    counters = {b.version_key(scope): 500 + i for i, scope in enumerate(ODD_SCOPES)}
    client.mset(counters)
    script = lua("valid_entry") + (
        "local tag, offset = valid_entry(redis.call('GET', KEYS[1]))\n"
        "if not tag then return {0} end\n"
        "return {1, tag, offset, entry_rows(redis.call('GET', KEYS[1]))}\n"
    )
    yield client, key, counters, lambda: client.eval(script, 1, key)
    client.delete(key, *counters)


def test_redis_validates_an_entry_by_every_counter_it_names(redis_entry):
    client, key, counters, check = redis_entry
    tag = "0123456789abcdef0123456789abcdef01234567"
    fragment = b'"data":{"a":1}'
    entry = encode_entry(counters, fragment, tag)
    client.set(key, entry)
    valid, got_tag, offset, rows = check()
    assert valid == 1 and got_tag.decode() == tag and entry[offset:] == fragment
    names = list(counters)
    assert [r.decode() for r in rows] == [x for k in sorted(names) for x in (k, str(counters[k]), str(counters[k]))]
    # One counter moved, then one missing: no longer valid.
    first = sorted(names)[2]
    client.incr(first)
    assert check() == [0]
    client.decr(first)
    assert check()[0] == 1
    client.delete(first)
    assert check() == [0]
    # No rows at all: valid on its own, its tag as stored.
    client.set(key, encode_entry({}, fragment, tag))
    assert check()[:2] == [1, tag.encode()]


def test_what_is_not_an_entry_is_a_miss_not_an_error(redis_entry):
    """An entry of the earlier format (one "<counter>\\t<version>" line per row after
    its length), or any other bytes, is not valid: the lookup misses and rebuilds."""
    client, key, counters, check = redis_entry
    header = "".join(f"{k}\t{v}\n" for k, v in sorted(counters.items())).encode()
    for value in (str(len(header)).encode() + b"\n" + header + b'"data":1', b"garbage", b"1 2\n", b"x y z\n"):
        client.set(key, value)
        assert check() == [0], value
