"""The shape of core/cache/ (docs/cache.md): the Lua scripts found as package data
beside the code, and a public API that names what it exports."""
import core.cache as cache_layer
from core.cache.scripts import LUA_DIR, lua


def test_every_lua_script_loads_with_its_includes():
    names = sorted(p.stem for p in LUA_DIR.glob("*.lua"))
    assert {"bump", "fast_lookup", "lookup", "valid_entry", "versions"} <= set(names)
    for name in names:
        source = lua(name)
        assert "--#include" not in source and "redis.call" in source, name
    assert lua("lookup").count("local function valid_entry") == 1
    assert lua("fast_lookup").count("local function valid_entry") == 1


def test_public_api_is_importable():
    assert sorted(cache_layer.__all__) == sorted(set(cache_layer.__all__))
    missing = [name for name in cache_layer.__all__ if not hasattr(cache_layer, name)]
    assert missing == []


def test_no_module_of_the_cache_layer_is_over_300_lines():
    """One module per concern (docs/cache.md): none grows past ~300 lines."""
    from pathlib import Path

    sizes = {p.name: len(p.read_text().splitlines()) for p in Path(cache_layer.__file__).parent.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 300} == {}
