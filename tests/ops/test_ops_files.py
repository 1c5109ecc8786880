"""The dashboard and alert rules in ops/ name only metrics the app exports, and
the rules pass Prometheus's own checker and their unit tests (when promtool is
installed; CI installs it)."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from prometheus_client import REGISTRY

from tests.prerequisites import needs

OPS = Path(settings.BASE_DIR) / "ops"
DASHBOARD = OPS / "grafana" / "shiftboard.json"
RULES = OPS / "prometheus" / "alerts.yml"
RULE_TESTS = OPS / "prometheus" / "alerts.test.yml"

# Metric names in PromQL: the app's metrics are all prefixed django_ or shiftboard_.
METRIC = re.compile(r"\b((?:django|shiftboard)_[a-zA-Z0-9_]+)\b")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "unknown": ("",),
}


def exported_names() -> set[str]:
    """Every sample name the app's registry can export (families without samples
    yet included: a labelled counter exports nothing until first used)."""
    # The request metrics are registered when django-prometheus's middleware is
    # built; the database ones when a connection is used: one request does both.
    assert Client().get("/api/v1/health/").status_code == 200
    import core.cache  # noqa: F401 - shiftboard_response_cache_total
    import core.db_instrumentation  # noqa: F401
    import core.health  # noqa: F401

    names = set()
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


MATCHERS = re.compile(r"\b((?:django|shiftboard)_[a-zA-Z0-9_]+)\{([^}]*)\}")
MATCHER_LABEL = re.compile(r'(\w+)\s*(?:=~|!~|!=|=)\s*"')
BY = re.compile(r"\bby\s*\(([^)]*)\)")


def exported_labels() -> dict[str, set[str]]:
    """Sample name -> the label names its family has (``le`` on histogram buckets)."""
    exported_names()  # registers the request and database metrics
    out = {}
    for collector, names in REGISTRY._collector_to_names.items():
        labels = set(getattr(collector, "_labelnames", ()))
        for name in names:
            out[name] = labels | ({"le"} if name.endswith("_bucket") else set())
    return out


def label_problems(expr: str, labels: dict[str, set[str]]) -> list[str]:
    """Labels an expression selects on (``metric{label=...}``) or keeps (``by (...)``)
    that its metric does not have: a panel or alert that would stay empty. The
    expressions here aggregate one metric family per ``by``, so every metric the
    expression names must have every ``by`` label."""
    problems = []
    for metric, matchers in MATCHERS.findall(expr):
        problems += [f"{metric} has no label {label}" for label in MATCHER_LABEL.findall(matchers)
                     if label not in labels.get(metric, set())]
    for group in BY.findall(expr):
        for label in (part.strip() for part in group.split(",") if part.strip()):
            problems += [f"{metric} has no label {label} (by)" for metric in METRIC.findall(expr)
                         if label not in labels.get(metric, set())]
    return problems


def dashboard_exprs() -> list[str]:
    data = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in data["panels"] for t in panel.get("targets", [])]
    for var in data.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            exprs.append(query.get("query", ""))
    return exprs


def rule_exprs() -> list[str]:
    # The rules file is plain YAML written for humans; read the expr blocks
    # without a YAML dependency: "expr: <one line>" or "expr: |" + indented lines.
    exprs, lines = [], RULES.read_text().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped.startswith("expr:"):
            continue
        rest = stripped[len("expr:"):].strip()
        if rest not in ("|", ">"):
            exprs.append(rest)
            continue
        indent = len(line) - len(line.lstrip())
        block = []
        for follow in lines[i + 1:]:
            if follow.strip() and len(follow) - len(follow.lstrip()) <= indent:
                break
            block.append(follow)
        exprs.append("\n".join(block))
    return exprs


@pytest.mark.django_db
def test_every_metric_the_dashboard_and_rules_name_is_exported():
    exported = exported_names()
    dash, rules = dashboard_exprs(), rule_exprs()
    assert len(dash) >= 10 and len(rules) >= 5
    named = {name for expr in dash + rules for name in METRIC.findall(expr)}
    # What the issue asks the dashboard and rules to cover.
    for required in (
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "django_http_responses_total_by_status_view_method_total",
        "shiftboard_response_cache_total",
        "django_db_query_duration_seconds_sum",
        "shiftboard_db_slow_queries_total",
        "shiftboard_db_replica_lag_seconds",
        "shiftboard_db_replica_lag_bytes",
        "shiftboard_db_replica_up",
        "shiftboard_db_replica_replicating",
    ):
        assert required in named
    assert named - exported == set()


@pytest.mark.django_db
def test_every_label_the_dashboard_and_rules_use_is_one_its_metric_has():
    labels = exported_labels()
    assert labels["shiftboard_db_slow_queries_total"] == {"endpoint"}
    # The check itself finds a misspelt label, in a selector and in a by clause.
    assert label_problems('sum(rate(shiftboard_response_cache_total{outcome="hit"}[5m]))', labels) == [
        "shiftboard_response_cache_total has no label outcome"]
    assert label_problems("sum by (view_name) (rate(django_http_exceptions_total_by_view_total[5m]))", labels) == [
        "django_http_exceptions_total_by_view_total has no label view_name (by)"]
    problems = [p for expr in dashboard_exprs() + rule_exprs() for p in label_problems(expr, labels)]
    assert problems == []


def test_dashboard_is_importable_grafana_json():
    data = json.loads(DASHBOARD.read_text())
    assert data["uid"] and data["title"]
    ids = [panel["id"] for panel in data["panels"]]
    assert len(ids) == len(set(ids))
    for panel in data["panels"]:
        assert panel["targets"] and all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


@needs(shutil.which("promtool") is not None, "promtool not installed (Debian package prometheus)")
def test_promtool_checks_and_unit_tests_pass():
    check = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(["promtool", "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
                          timeout=60)
    assert unit.returncode == 0, unit.stdout + unit.stderr
