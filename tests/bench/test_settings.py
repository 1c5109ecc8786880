"""bench/settings.py turns cachalot's raw-SQL write detector off
(CACHALOT_INVALIDATE_RAW = False): it wrapped every raw cursor.execute() in the
bench's server, which taxed Shiftboard's prepared reads and nothing else. That is
sound only while no code the server runs writes through a raw cursor (cachalot
still sees every ORM write). This checks it: the served packages open a raw cursor
only in the modules listed here, and every statement those modules execute is a
SELECT (core/prepared.py runs compiled ``values_list()`` querysets, which
``prepared_rows`` refuses to take otherwise: tests/core/test_prepared.py)."""
import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVED = ("accounts", "jobs", "payments", "ratings", "core", "config")
RAW_CURSOR_MODULES = {
    "core/prepared.py",  # compiled values_list() SELECTs
    "core/replicas.py",  # WAL positions and who a server is
    "core/views.py",  # the readiness probe's SELECT 1
    "core/health.py",  # SELECT 1, the applied migrations
}


def _served_files():
    for package in SERVED:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _executed_sql(path: Path) -> list[str]:
    """The statements ``path`` passes to ``<cursor>.execute()`` as a literal or a
    module-level name; other arguments (an expression) are returned as ``None``."""
    module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "execute"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "cursor" and node.args):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append(arg.value)
            elif isinstance(arg, ast.Name):
                found.append(getattr(module, arg.id))
            else:
                found.append(None)
    return found


def test_cachalot_raw_detector_is_off_in_the_bench_settings():
    import bench.settings as bench_settings

    assert "cachalot" in bench_settings.INSTALLED_APPS
    assert bench_settings.CACHALOT_INVALIDATE_RAW is False


def test_served_code_opens_raw_cursors_only_to_read():
    opened = {str(p.relative_to(ROOT)) for p in _served_files() if ".cursor()" in p.read_text()}
    assert opened == RAW_CURSOR_MODULES
    for name in sorted(RAW_CURSOR_MODULES - {"core/prepared.py"}):
        statements = _executed_sql(ROOT / name)
        assert statements, name
        for sql in statements:
            assert sql is not None and sql.lstrip().upper().startswith("SELECT"), (name, sql)


def test_prepared_reads_execute_their_compiled_select():
    """core/prepared.py executes ``entry.sql`` only: what a values_list() queryset
    compiled to."""
    source = (ROOT / "core/prepared.py").read_text()
    calls = [n for n in ast.walk(ast.parse(source))
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "execute"]
    assert [ast.unparse(c.args[0]) for c in calls] == ["entry.sql"]
    assert "values_list" in source
