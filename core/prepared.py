"""Prepared reads: a hot read's SQL compiled once, then re-run with new values.

Django compiles a queryset to SQL on every evaluation. For the narrow reads of a
cache miss (one job by id, its skills, a profile) that compilation costs more than
the query: in-process, reading one job's columns by id took 1.27 ms of CPU through
the ORM and 0.21 ms as the same SQL run directly; 0.74 ms of the difference was
building and compiling the queryset.

``prepared_rows(key, build, args)`` runs ``build(*args)`` (a ``values_list``
queryset) as that queryset would, but compiles it once per thread, database alias
and shape of ``args``:

- on first use ``build`` is called with *sentinels* in place of ``args`` (unique
  negative integers, one per value; a list argument becomes as many sentinels as
  it has items), compiled for the alias the router picks for its model, and each
  sentinel's positions among the SQL parameters are noted (a value the query
  uses twice fills both);
- afterwards the SQL is run on the router's alias with the real values put in
  those positions, and the rows go through the compiler's converters (what
  ``values_list`` applies: on SQLite, datetimes and decimals), as tuples (or the
  single column, for ``flat=True``).

So the statement, the database it goes to (a replica under a read floor, the
primary otherwise: core/replicas.py) and the rows are the queryset's own; the
query goes through the connection's cursor, so query counts, the slow-query hook,
Server-Timing and the toolbar see it as any other.

What ``build`` may be: a function of ``args`` alone (the same ``args`` give the same
query, whoever asks), returning a ``values_list`` of plain columns, then any expressions (a
``core.representation.NameList``), no ``extra()``. A value it would transform (``__icontains``, a cast) cannot be
found among the parameters: compiling refuses with ``ValueError``, so a misuse
fails in the tests, not silently. An empty list argument gives no rows without a
query (as ``__in=[]`` does)."""
from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Hashable, Sequence

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connections, router
from django.db.models.query import FlatValuesListIterable, ValuesListIterable

# Far below any id (ids start at 1) and unlike any other parameter a query carries.
_SENTINEL_BASE = -(2**62)

# Compiled statements kept per thread: a page's LIMIT and OFFSET are part of its
# SQL, so a crawler walking every page of every list would otherwise grow this
# without bound. Past the cap the thread starts over (a recompile is what an
# uncached read costs anyway).
MAX_PER_THREAD = 512

_local = threading.local()
_models: dict[Hashable, type] = {}
_models_lock = threading.Lock()


class _Compiled:
    __slots__ = ("sql", "params", "slots", "compiler", "converters", "flat")

    def __init__(self, sql, params, slots, compiler, converters, flat):
        self.sql = sql
        self.params = params
        self.slots = slots  # (parameter position, argument index, item index or None)
        self.compiler = compiler
        self.converters = converters
        self.flat = flat


def _shape(args: Sequence) -> tuple:
    return tuple(len(a) if isinstance(a, (list, tuple)) else -1 for a in args)


def _sentinels(shape: tuple):
    counter = itertools.count()
    out, where = [], {}
    for index, length in enumerate(shape):
        if length < 0:
            value = _SENTINEL_BASE - next(counter)
            where[value] = (index, None)
            out.append(value)
        else:
            items = []
            for item in range(length):
                value = _SENTINEL_BASE - next(counter)
                where[value] = (index, item)
                items.append(value)
            out.append(items)
    return out, where


def _compile(build: Callable, shape: tuple, alias: str) -> _Compiled:
    args, where = _sentinels(shape)
    queryset = build(*args)
    if queryset._iterable_class not in (ValuesListIterable, FlatValuesListIterable):
        raise ValueError("prepared_rows needs a values_list() queryset")
    query = queryset.query
    if query.extra_select:
        raise ValueError("prepared_rows takes no extra()")
    if tuple(queryset._fields) != (*query.values_select, *query.annotation_select):
        # The ORM would reorder each row to the asked order (ValuesListIterable); not done here.
        raise ValueError("prepared_rows takes expressions only after the plain columns")
    compiler = query.get_compiler(using=alias)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        # Nothing to read whatever the values (an empty slice, ``none()``): as the ORM, no query.
        return _Compiled(None, [], [], compiler, [], False)
    slots, found = [], set()
    for position, param in enumerate(params):
        if type(param) is int and param in where:
            # A value the query uses twice (payer or recipient) fills both places.
            index, item = where[param]
            slots.append((position, index, item))
            found.add(param)
    if len(found) != len(where):
        raise ValueError(
            f"prepared_rows: {len(where) - len(found)} value(s) not found as SQL parameters; the query transforms them"
        )
    fields = [s[0] for s in compiler.select[0 : compiler.col_count]]
    converters = compiler.get_converters(fields)
    return _Compiled(sql, list(params), slots, compiler, converters,
                     queryset._iterable_class is FlatValuesListIterable)


def prepared_rows(key: Hashable, build: Callable, args: Sequence, on_compile: Callable | None = None) -> list:
    """The rows of ``build(*args)`` (a ``values_list`` queryset), its SQL compiled
    once per thread, alias and shape of ``args`` under ``key`` (module docstring).
    ``key`` names what ``build`` reads: two different ``build`` must never share it.
    ``on_compile(sql, params)``: called once, right after compiling, with the SQL
    and this call's parameters (a check that they are those of the query the
    caller would otherwise run; it raises if not, and nothing is kept)."""
    if any(isinstance(a, (list, tuple)) and not a for a in args):
        return []
    shape = _shape(args)
    model = _models.get(key)
    if model is None:
        sentinels, _ = _sentinels(shape)
        with _models_lock:
            model = _models.setdefault(key, build(*sentinels).model)
    alias = router.db_for_read(model)
    cache = getattr(_local, "compiled", None)
    if cache is None:
        cache = _local.compiled = {}
    entry = cache.get((key, alias, shape))
    fresh = entry is None
    if fresh:
        entry = _compile(build, shape, alias)
    if fresh and len(cache) >= MAX_PER_THREAD:
        cache.clear()
    if entry.sql is None:
        if fresh:
            cache[(key, alias, shape)] = entry
        return []
    params = list(entry.params)
    for position, index, item in entry.slots:
        params[position] = args[index] if item is None else args[index][item]
    if fresh:
        if on_compile is not None:
            on_compile(entry.sql, tuple(params))
        cache[(key, alias, shape)] = entry
    connection = connections[alias]
    with connection.cursor() as cursor:
        _driver_loaders(connection, cursor)
        cursor.execute(entry.sql, params)
        rows = cursor.fetchall()
    if entry.converters:
        rows = [tuple(row) for row in entry.compiler.apply_converters(rows, entry.converters)]
    if entry.flat:
        return [row[0] for row in rows]
    return rows


def _driver_loaders(connection, cursor) -> None:
    """On PostgreSQL with time zones on: this cursor reads ``timestamptz`` with
    psycopg's own loader (compiled, where psycopg's C extension is installed)
    instead of the Python subclass Django registers on the connection, which only
    sets the connection's time zone on each value. Both give the same aware
    instant; a page of 20 jobs has 80 of them, and the C loader parses them in
    half the time (0.25 against 0.53 ms in-process). Only this cursor: the ORM's
    reads keep Django's loader."""
    if connection.vendor != "postgresql" or not settings.USE_TZ:
        return
    adapters = getattr(getattr(cursor, "cursor", None), "adapters", None)
    if adapters is not None:
        adapters.register_loader(*_timestamptz_loader())


@functools.cache
def _timestamptz_loader() -> tuple[int, type]:
    """(oid, psycopg's own text loader) of ``timestamptz``: looked up once."""
    import psycopg
    from psycopg.pq import Format

    oid = psycopg.adapters.types["timestamptz"].oid
    return oid, psycopg.adapters.get_loader(oid, Format.TEXT)


def forget() -> None:
    """Drops this thread's compiled statements (tests that change the schema or
    the databases)."""
    _local.compiled = {}
