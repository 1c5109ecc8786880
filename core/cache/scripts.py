"""The Lua scripts of the Redis backend, kept as ``lua/<name>.lua`` and loaded by
name. A line ``--#include <name>`` is replaced by that script's text (the shared
``valid_entry`` function). The files are package data read from beside this
module, so a plain source tree (or any copy of the ``core`` package) carries them."""
from __future__ import annotations

from functools import cache
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"
_INCLUDE = "--#include "


@cache
def lua(name: str) -> str:
    """The source of ``lua/<name>.lua`` with its includes expanded."""
    lines = []
    for line in (LUA_DIR / f"{name}.lua").read_text().splitlines(keepends=True):
        if line.startswith(_INCLUDE):
            lines.append(lua(line[len(_INCLUDE) :].strip()))
        else:
            lines.append(line)
    return "".join(lines)
