"""``manage.py explain_plans``: prove that every list of the API is served by an
index at scale (PostgreSQL only; ``make explain``).

What it does:
1. creates a dedicated database (``--database``, default ``shiftboard_explain``,
   next to the one DATABASE_URL names; nothing else is touched), migrates it and
   loads ``--jobs`` jobs (default 100,000) and proportional rows with ``manage.py
   seed`` (bulk_create), then ``VACUUM ANALYZE`` (fresh statistics, and a visibility
   map so index-only scans are possible). ``--reuse`` keeps an already loaded
   database with that many jobs;
2. sends each probe, a real GET of the API (list filters and orderings of docs/API.md,
   the private lists of a busy user, details; declared per endpoint in the
   contract table, tools/contracts.py), through Django's test client, and
   records every SELECT the request runs (COUNT, page, prefetches, auth);
3. runs ``EXPLAIN (ANALYZE, FORMAT JSON)`` on each recorded statement and prints
   query -> scans/indexes -> cost and time;
4. fails (exit 1) when any plan reads a big table with a Seq Scan, except a
   *bounded* one: a Seq Scan under a LIMIT that read at most ``--bounded-rows``
   rows (the capped COUNT of core.envelope reads at most cap+1 keys; when the
   first cap+1 heap rows are the cheapest way to find them, that cost does not
   grow with the table); and when any scan, index scans included, read more than
   ``--bounded-rows`` rows (an index used as a mere filter is a scan too);
5. lists the project's ``Meta.indexes`` that no plan used (candidates for removal)
   and the indexes that each plan did use.

``/jobs/?search=`` (``icontains`` on title or description) is served by trigram
indexes that only a PostgreSQL migration creates (jobs/migrations/0003): they are
not in ``Meta.indexes`` and show among the "other indexes used".

Probes pick the busiest values (the client with most jobs, the most common city,
...): the values for which a planner is most tempted by a sequential scan.

A tool above the apps (``tools``): it imports their models directly.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

from django.apps import apps
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Count
from django.test import Client
from django.test.utils import override_settings
from rest_framework.authtoken.models import Token

from accounts.models import Profile, Skill, User
from jobs.models import Application, Category, Job, SavedJob
from payments.models import Payment
from ratings.models import Review
from tools import contracts

PROJECT_APPS = ("accounts", "jobs", "payments", "ratings")
DEFAULT_JOBS = 100_000
DEFAULT_DATABASE = "shiftboard_explain"
# A Seq Scan under a LIMIT that read at most this many rows costs the same at any
# table size (the capped COUNT reads at most EnvelopePagination.count_cap + 1 keys).
DEFAULT_BOUNDED_ROWS = 30_000
# Settings for the in-process requests: no HTTPS redirect, a private local-memory
# cache (nothing shared is touched, and every probe is a MISS: it carries a
# unique query parameter), no debug toolbar.
PROBE_SETTINGS = {
    "ALLOWED_HOSTS": ["testserver"],
    "SECURE_SSL_REDIRECT": False,
    "CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "explain"}},
}


def big_tables() -> set[str]:
    """Tables that grow with the data: a sequential scan of one is a finding."""
    names = set()
    for model in (Job, Application, SavedJob, Payment, Review, User, Profile):
        names.add(model._meta.db_table)
        for m2m in model._meta.local_many_to_many:
            names.add(m2m.remote_field.through._meta.db_table)
    return names


# --- plans ------------------------------------------------------------------------

@dataclass
class Scan:
    node: str  # "Index Scan", "Seq Scan", ...
    table: str
    index: str | None
    rows_read: float  # actual rows + rows removed by filter, times loops
    under_limit: bool


@dataclass
class Statement:
    probe: str
    sql: str
    params: tuple
    plan: dict = field(default_factory=dict)
    scans: list[Scan] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.sql.lstrip().upper().startswith("SELECT COUNT("):
            return "count"
        table = _first_table(self.sql)
        return f"rows {table}" if table else "rows"

    @property
    def cost(self) -> float:
        return self.plan.get("Plan", {}).get("Total Cost", 0.0)

    @property
    def ms(self) -> float:
        return self.plan.get("Execution Time", 0.0)


def _first_table(sql: str) -> str | None:
    marker = ' FROM "'
    at = sql.find(marker)
    if at < 0:
        return None
    rest = sql[at + len(marker):]
    return rest[: rest.find('"')]


def walk_plan(node: dict, under_limit: bool = False):
    """Every scan node of a plan (``EXPLAIN (FORMAT JSON)``'s ``Plan``)."""
    kind = node.get("Node Type", "")
    if kind in ("Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Bitmap Index Scan"):
        loops = node.get("Actual Loops", 1) or 1
        read = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * loops
        yield Scan(kind, node.get("Relation Name", ""), node.get("Index Name"), read, under_limit)
    below_limit = under_limit or kind == "Limit"
    for child in node.get("Plans", []):
        yield from walk_plan(child, below_limit)


def explain(statement: Statement) -> Statement:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement.sql, statement.params)
        raw = cursor.fetchone()[0]
    document = raw if isinstance(raw, list) else json.loads(raw)
    statement.plan = document[0]
    statement.scans = list(walk_plan(statement.plan["Plan"]))
    return statement


def findings(statements: list[Statement], bounded_rows: int = DEFAULT_BOUNDED_ROWS) -> tuple[list[str], list[str]]:
    """Failures and warnings, one line each, for reads of big tables.

    Failures: a Seq Scan, unless under a LIMIT and it read at most ``bounded_rows``
    rows; and a *full* index scan (an index used as a mere filter or order, reading
    at least half the table: a sequential scan in disguise). Warnings: any other
    scan that read more than ``bounded_rows`` rows (a non-selective index)."""
    big = big_tables()
    failures, warnings = [], []
    for st in statements:
        for scan in st.scans:
            table = scan.table or _index_table(scan.index or "")
            if table not in big:
                continue
            line = f"{st.probe}: {scan.node} on {scan.index or table} read {scan.rows_read:.0f} rows ({st.kind})"
            if scan.node == "Seq Scan":
                if not (scan.under_limit and scan.rows_read <= bounded_rows):
                    failures.append(f"{line}: {st.sql[:160]}")
            elif scan.rows_read >= 0.5 * _table_rows(table) > bounded_rows:
                failures.append(f"{line}, a full index scan: {st.sql[:160]}")
            elif scan.rows_read > bounded_rows:
                warnings.append(line)
    return failures, warnings


def _table_rows(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s AND relkind = 'r'", [table])
        row = cursor.fetchone()
    return float(row[0]) if row else 0.0


_index_tables: dict[str, str] = {}


def _index_table(index: str) -> str:
    """The table of an index (Bitmap Index Scan nodes name only the index)."""
    if not _index_tables:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname, tablename FROM pg_indexes WHERE schemaname = current_schema()")
            _index_tables.update(cursor.fetchall())
    return _index_tables.get(index, "")


def max_rows_read(st: Statement) -> float:
    return max((scan.rows_read for scan in st.scans), default=0)


def describe_scans(st: Statement, bounded_rows: int = DEFAULT_BOUNDED_ROWS) -> str:
    big = big_tables()
    parts = []
    for scan in st.scans:
        if scan.node == "Bitmap Heap Scan":
            continue  # its Bitmap Index Scans name the indexes
        if scan.node == "Seq Scan":
            if scan.table not in big:
                parts.append(f"seq {scan.table} (small)")
            elif scan.under_limit and scan.rows_read <= bounded_rows:
                parts.append(f"seq {scan.table} (bounded, {scan.rows_read:.0f} rows)")
            else:
                parts.append(f"SEQ {scan.table} ({scan.rows_read:.0f} rows)")
        else:
            short = {"Index Scan": "idx", "Index Only Scan": "idx-only", "Bitmap Index Scan": "bitmap"}[scan.node]
            parts.append(f"{short} {scan.index}")
    if _has_node(st.plan.get("Plan", {}), "BitmapOr"):
        parts.append("(BitmapOr)")
    return ", ".join(dict.fromkeys(parts)) or "-"


def _has_node(node: dict, kind: str) -> bool:
    return node.get("Node Type") == kind or any(_has_node(c, kind) for c in node.get("Plans", []))


# --- probes ------------------------------------------------------------------------

@dataclass
class Probe:
    label: str
    path: str
    user_id: int | None = None


def pick_targets() -> dict:
    """The busiest values of each filter, and the busiest user of each private list."""
    def top(qs, key):
        row = qs.values(key).annotate(n=Count("*")).order_by("-n", key).first()
        if row is None:
            raise CommandError(f"No data for {qs.model.__name__}.{key}: load some first.")
        return row[key]

    rates = sorted(Job.objects.order_by("?").values_list("rate", flat=True)[:2000])
    busiest_job = top(Application.objects.all(), "job")
    category_id = top(Job.objects.all(), "category")
    skill_id = top(Job.skills.through.objects.all(), "skill")
    payer = top(Payment.objects.all(), "payer")
    return {
        "client": top(Job.objects.all(), "client"),
        "worker": top(Application.objects.all(), "worker"),
        "deep_page": max(1, min(50, Job.objects.count() // 20)),
        "common_word": max(top(Job.objects.all(), "title").replace(",", " ").split(), key=len),
        "busiest_job": busiest_job,
        "busiest_job_owner": Job.objects.filter(pk=busiest_job).values_list("client", flat=True).get(),
        "category_id": category_id,
        "category_slug": Category.objects.filter(pk=category_id).values_list("slug", flat=True).get(),
        "skill_slug": Skill.objects.filter(pk=skill_id).values_list("slug", flat=True).get(),
        "city": top(Job.objects.all(), "city"),
        "min_rate": rates[len(rates) * 45 // 100],
        "max_rate": rates[len(rates) * 55 // 100],
        "payer": payer,
        "recipient": top(Payment.objects.all(), "recipient"),
        "reviewed": top(Review.objects.all(), "reviewed"),
        "reviewer": top(Review.objects.all(), "reviewer"),
        "review_job": top(Review.objects.all(), "job"),
        "saver": top(SavedJob.objects.all(), "user"),
        "staff": User.objects.filter(is_staff=True).values_list("pk", flat=True).first(),
        "payment_of_payer": Payment.objects.filter(payer=payer).values_list("pk", flat=True).first(),
    }


def build_probes(t: dict) -> list[Probe]:
    """Every probe of the endpoint contracts (tools/contracts.py), with the busiest values."""
    return [Probe(label, path, user_id) for label, path, user_id in contracts.probes(t)]


class _Recorder:
    """An execute wrapper that keeps every SELECT a request runs."""

    def __init__(self):
        self.statements: list[tuple[str, tuple]] = []

    def __call__(self, execute, sql, params, many, context):
        if not many and sql.lstrip().upper().startswith("SELECT"):
            self.statements.append((sql, tuple(params or ())))
        return execute(sql, params, many, context)


def run_probes(probes: list[Probe]) -> tuple[list[Statement], list[str]]:
    """Send every probe; EXPLAIN every SELECT it ran. Returns the statements and
    the probes that did not answer 200 (a broken probe proves nothing)."""
    statements, broken = [], []
    with override_settings(**PROBE_SETTINGS):
        for probe in probes:
            client = Client()
            headers = {}
            if probe.user_id:
                token, _ = Token.objects.get_or_create(user=User.objects.get(pk=probe.user_id))
                headers["HTTP_AUTHORIZATION"] = f"Token {token.key}"
            sep = "&" if "?" in probe.path else "?"
            recorder = _Recorder()
            with connection.execute_wrapper(recorder):
                response = client.get(f"{probe.path}{sep}_probe={uuid.uuid4().hex}", **headers)
            if response.status_code != 200:
                broken.append(f"{probe.label}: GET {probe.path} answered {response.status_code}")
                continue
            for sql, params in recorder.statements:
                statements.append(explain(Statement(probe.label, sql, params)))
    return statements, broken


# --- indexes -------------------------------------------------------------------------

def declared_indexes() -> dict[str, str]:
    """``Meta.indexes`` of the project's models: index name -> "app.Model"."""
    out = {}
    for app_label in PROJECT_APPS:
        for model in apps.get_app_config(app_label).get_models():
            for index in model._meta.indexes:
                out[index.name] = model._meta.label
    return out


def used_indexes(statements: list[Statement]) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for st in statements:
        for scan in st.scans:
            if scan.index:
                used.setdefault(scan.index, set()).add(st.probe)
    return used


# --- the command ---------------------------------------------------------------------

class Command(BaseCommand):
    help = "Load N jobs into a dedicated PostgreSQL database and EXPLAIN every API list; fail on a Seq Scan."

    def add_arguments(self, parser):
        parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help=f"jobs to load (default {DEFAULT_JOBS})")
        parser.add_argument("--database", default=DEFAULT_DATABASE, help=f"database to create (default {DEFAULT_DATABASE})")
        parser.add_argument("--reuse", action="store_true", help="keep the database when it already holds --jobs jobs")
        parser.add_argument("--bounded-rows", type=int, default=DEFAULT_BOUNDED_ROWS,
                            help="a Seq Scan under a LIMIT that read at most this many rows is bounded, not a finding")
        parser.add_argument("--sql", action="store_true", help="print each statement's SQL under its row")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("explain_plans needs PostgreSQL: set DATABASE_URL=postgres://…")
        name = options["database"]
        if name == connection.settings_dict["NAME"]:
            raise CommandError("--database must differ from the DATABASE_URL database (it is dropped and reloaded).")
        n_jobs = options["jobs"]
        self._use_database(name, n_jobs, reuse=options["reuse"])

        targets = pick_targets()
        probes = build_probes(targets)
        started = time.perf_counter()
        statements, broken = run_probes(probes)
        self._say(f"{len(probes)} probes, {len(statements)} statements explained in {time.perf_counter() - started:.1f}s\n")
        self._print_table(statements, options["bounded_rows"], options["sql"])
        self._print_count_timings(statements)
        self._print_indexes(statements)

        failures, warnings = findings(statements, options["bounded_rows"])
        if warnings:
            self._say(f"\nWarnings (an index that still reads more than {options['bounded_rows']} rows):\n  "
                      + "\n  ".join(warnings))
        problems = failures + broken
        if problems:
            self.stderr.write("\nFAILED:\n  " + "\n  ".join(problems))
            raise SystemExit(1)
        self._say(f"\nOK: no unbounded sequential or full index scan of a big table at {n_jobs} jobs.")

    def _say(self, text: str):
        self.stdout.write(text)

    def _use_database(self, name: str, n_jobs: int, *, reuse: bool):
        exists = self._database_exists(name)
        if exists and reuse:
            self._switch_to(name)
            try:
                have = Job.objects.count()
            except Exception:  # noqa: BLE001 - not migrated: reload
                have = -1
            if have == n_jobs:
                self._say(f"Reusing database {name} ({have} jobs).")
                return
            self._say(f"Database {name} holds {have} jobs, not {n_jobs}: reloading.")
        self._switch_to(None)
        with connection._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{name}"')
        self._switch_to(name)
        call_command("migrate", verbosity=0, interactive=False)
        if "seed" not in get_commands():
            raise CommandError("manage.py seed is missing: it loads the data.")
        started = time.perf_counter()
        with override_settings(**PROBE_SETTINGS):
            call_command("seed", jobs=n_jobs, stdout=self.stdout)
        self._say(f"Loaded in {time.perf_counter() - started:.0f}s; VACUUM ANALYZE …")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        self._print_sizes()

    def _database_exists(self, name: str) -> bool:
        with connection._nodb_cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            return cursor.fetchone() is not None

    _original_name: str | None = None

    def _switch_to(self, name: str | None):
        """Point the default connection at ``name`` (None: back to DATABASE_URL's)."""
        if self._original_name is None:
            self._original_name = connection.settings_dict["NAME"]
        connection.close()
        connection.settings_dict["NAME"] = name or self._original_name

    def _print_sizes(self):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE n_live_tup > 0 ORDER BY n_live_tup DESC"
            )
            rows = cursor.fetchall()
        self._say("Rows: " + ", ".join(f"{t} {n}" for t, n in rows))

    def _print_table(self, statements: list[Statement], bounded_rows: int, show_sql: bool):
        width = max(len(s.probe) for s in statements)
        self._say(f"{'probe':<{width}}  {'statement':<22} {'cost':>9} {'ms':>8} {'read':>7}  scans / indexes")
        for st in statements:
            self._say(
                f"{st.probe:<{width}}  {st.kind[:22]:<22} {st.cost:>9.1f} {st.ms:>8.2f} {max_rows_read(st):>7.0f}"
                f"  {describe_scans(st, bounded_rows)}"
            )
            if show_sql:
                self._say(f"    {st.sql}")

    def _print_count_timings(self, statements: list[Statement]):
        """The page COUNT as served (capped: a LIMITed key-only subquery) against the
        exact count a plain paginator would run (the same subquery without LIMIT)."""
        self._say("\nPage COUNT, exact vs capped (EXPLAIN ANALYZE execution time, best of 3):")
        self._say(f"  {'probe':<34} {'exact ms':>9} {'capped ms':>10} {'exact rows':>11}")
        seen = set()
        for st in statements:
            if st.kind != "count" or st.probe in seen or " LIMIT " not in st.sql:
                continue
            seen.add(st.probe)
            exact_sql = st.sql.rsplit(" LIMIT ", 1)[0] + ") subquery"
            with connection.cursor() as cursor:
                cursor.execute(exact_sql, st.params)
                exact_rows = cursor.fetchone()[0]
            exact = min(explain(Statement(st.probe, exact_sql, st.params)).ms for _ in range(3))
            capped = min(explain(Statement(st.probe, st.sql, st.params)).ms for _ in range(3))
            self._say(f"  {st.probe:<34} {exact:>9.2f} {capped:>10.2f} {exact_rows:>11}")

    def _print_indexes(self, statements: list[Statement]):
        declared = declared_indexes()
        used = used_indexes(statements)
        self._say("\nMeta.indexes and the probes whose plans use them:")
        for index, model in sorted(declared.items(), key=lambda kv: (kv[1], kv[0])):
            probes = sorted(used.get(index, ()))
            shown = ", ".join(probes[:4]) + (f" (+{len(probes) - 4})" if len(probes) > 4 else "")
            self._say(f"  {model:<20} {index:<28} {shown or 'UNUSED'}")
        others = sorted(set(used) - set(declared))
        self._say("Other indexes used (primary keys, unique constraints, foreign keys): " + ", ".join(others))
        unused = sorted(set(declared) - set(used))
        self._say("Unused Meta.indexes: " + (", ".join(unused) if unused else "none"))
