"""A model write path that bypasses invalidation fails a test.

1. Every model of the apps is registered with ``core.signals.track`` (then every
   ``save()``, ``delete()`` -- queryset deletes and cascades included, because a
   connected receiver stops Django from fast-deleting -- and m2m change bumps).
2. Writes that send no signal -- ``QuerySet.update()``, ``bulk_create``,
   ``bulk_update``, raw SQL that writes (``.raw()``, ``cursor()`` in a function
   whose SQL says INSERT/UPDATE/DELETE/..., or COPY), writes to an auto-created
   link table (``.through``) -- are found by reading the source: the function that
   makes one must call ``bump(...)`` itself, or be listed below with the reason it
   needs none.
"""
import ast
import re
from pathlib import Path

from django.apps import apps
from django.conf import settings

from core.signals import tracked_models

APPS = ("accounts", "jobs", "payments", "ratings")
SCANNED = (*APPS, "core", "tools")
# The cache layer itself is not a write path (paths, or folders ending in "/").
NOT_SCANNED = ("core/cache/", "core/signals.py")

# (file, function) -> why it needs no bump. Each entry must still match a write
# that the scan finds (checked below), so the list cannot rot.
EXCEPTIONS = {
    ("accounts/services.py", "user_login"): "update() of last_login only: no endpoint shows it",
    ("accounts/services.py", "email_otp_request"): "update() of e-mail codes: codes are cached nowhere",
    ("accounts/services.py", "email_otp_verify"): "update() of a code's try count: codes are cached nowhere",
    ("tools/management/commands/explain_plans.py", "_use_database"): (
        "DROP/CREATE DATABASE of its own scratch database for EXPLAIN runs: the served "
        "database, and so the cache, are untouched"
    ),
    ("tools/management/commands/seed.py", "insert"): (
        "the seed command's bulk loaders (bulk_create, COPY): it only creates rows with new ids, "
        "refuses a database that has jobs unless --flush, and bumps the list scopes (or drops this "
        "deployment's cache on --flush) when it is done"
    ),
}

BULK_NAMES = {"bulk_create", "bulk_update", "_raw_delete", "_insert", "_batched_insert"}
# Raw SQL counts as a write when its function holds SQL that writes (EXPLAIN and
# SELECT through a cursor are reads) or streams rows in (COPY, executemany).
SQL_NAMES = {"raw", "cursor"}
SQL_WRITE = re.compile(r"\b(INSERT|UPDATE|DELETE|TRUNCATE|MERGE|COPY|ALTER|DROP)\b", re.IGNORECASE)
QUERYSET_HINTS = ("objects", "queryset", "qs", "through")


def _source_text(node) -> str:
    return ast.unparse(node)


def _is_write(call: ast.Call) -> str | None:
    """What kind of signal-less write ``call`` is, or None."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return None
    if func.attr in BULK_NAMES or func.attr in SQL_NAMES:
        return func.attr
    if func.attr == "update":
        receiver = func.value
        # A queryset update is called on a chain (``.filter(...).update``) or on a
        # manager/queryset name; a dict's update is called on a plain variable.
        if isinstance(receiver, ast.Call) or any(h in _source_text(receiver) for h in QUERYSET_HINTS):
            return "update"
    return None


def _writes_sql(function) -> bool:
    if function is None:
        return True
    for n in ast.walk(function):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and SQL_WRITE.search(n.value):
            return True
        if isinstance(n, ast.JoinedStr) and SQL_WRITE.search(ast.unparse(n)):
            return True
        if isinstance(n, ast.Attribute) and n.attr in ("copy", "executemany"):
            return True
    return False


def _touches_through(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "through" for n in ast.walk(node))


def _calls_bump(function: ast.AST) -> bool:
    for n in ast.walk(function):
        if isinstance(n, ast.Call):
            name = n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
            if name in ("bump", "bump_now"):
                return True
    return False


def _write_sites():
    """Yield (file, function, kind, line) for every signal-less write in app code."""
    root = Path(settings.BASE_DIR)
    for app in SCANNED:
        for path in sorted((root / app).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if "/migrations/" in rel or rel.startswith(NOT_SCANNED):
                continue
            tree = ast.parse(path.read_text(), filename=rel)
            functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            # Innermost function for each call: walk functions, later (nested) ones win.
            owner = {}
            for function in functions:
                for n in ast.walk(function):
                    owner[id(n)] = function
            for n in ast.walk(tree):
                if isinstance(n, ast.Call):
                    kind = _is_write(n)
                    if kind is None and isinstance(n.func, ast.Attribute) and n.func.attr in (
                        "delete", "create", "update", "bulk_create", "get_or_create", "update_or_create",
                    ) and _touches_through(n.func.value):
                        kind = "link table write"
                    function = owner.get(id(n))
                    if kind in SQL_NAMES and not _writes_sql(function):
                        continue
                    if kind:
                        yield rel, function, kind, n.lineno


def test_every_app_model_is_tracked():
    tracked = set(tracked_models())
    missing = []
    for label in APPS:
        for model in apps.get_app_config(label).get_models(include_auto_created=False):
            # Proxy models send signals with the proxy as sender: they must be tracked too.
            if model not in tracked:
                missing.append(model._meta.label)
    assert missing == [], f"models whose writes would not invalidate the cache: {missing}"


def test_the_scan_finds_the_writes_it_is_meant_to_find():
    """The detector itself: dict.update is not a write; the signal-less ones are."""
    samples = {
        "Job.objects.filter(pk=1).update(title='x')": "update",
        "qs.update(status='x')": "update",
        "Job.objects.bulk_create([])": "bulk_create",
        "Job.objects.bulk_update([], ['title'])": "bulk_update",
        "User.objects.raw('UPDATE x')": "raw",
        "connection.cursor()": "cursor",
        "data.update({'a': 1})": None,
        "self.fields.update(extra)": None,
    }
    for source, kind in samples.items():
        call = ast.parse(source).body[0].value
        assert _is_write(call) == kind, source


def test_every_signal_less_write_bumps_or_is_an_explained_exception():
    offenders = []
    used_exceptions = set()
    for rel, function, kind, line in _write_sites():
        name = function.name if function else "<module>"
        if (rel, name) in EXCEPTIONS:
            used_exceptions.add((rel, name))
            continue
        if function is None or not _calls_bump(function):
            offenders.append(f"{rel}:{line} {kind} in {name}() without bump(...)")
    assert offenders == [], "writes that skip signals must bump their scopes:\n" + "\n".join(offenders)
    stale = set(EXCEPTIONS) - used_exceptions
    assert stale == set(), f"exceptions that match no write any more (remove them): {sorted(stale)}"


# --- no key scans where requests run -----------------------------------------------

KEY_SCANS = re.compile(r"delete_pattern\(|scan_iter\(|iter_keys\(|\bcache\.keys\(|[\"'](KEYS|SCAN)[\"']")
# file -> why a key scan is acceptable there (never on a request or write path).
SCAN_EXCEPTIONS = {
    "core/cache/redis_backend.py": "scan_prefix(): used only by the cache_stats admin command",
    "core/cache/cluster.py": "ClusterBackend.scan_prefix(): the same, on every group of a Redis Cluster",
    "tools/management/commands/seed.py": "seed --flush drops this deployment's keys once, before serving",
}


def test_no_key_scans_in_app_code():
    """Invalidation is one INCR per scope: KEYS/SCAN/delete_pattern appear nowhere
    a request or a write runs (docs/ARCHITECTURE.md, the cache layer)."""
    root = Path(settings.BASE_DIR)
    found = {}
    for top in (*SCANNED, "config"):
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if "/migrations/" in rel:
                continue
            hits = [n + 1 for n, line in enumerate(path.read_text().splitlines()) if KEY_SCANS.search(line)]
            if hits:
                found[rel] = hits
    unexplained = {rel: lines for rel, lines in found.items() if rel not in SCAN_EXCEPTIONS}
    assert unexplained == {}, f"key scans outside the listed admin paths: {unexplained}"
    stale = set(SCAN_EXCEPTIONS) - set(found)
    assert stale == set(), f"exceptions that match no scan any more (remove them): {sorted(stale)}"
