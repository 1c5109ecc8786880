"""The contract table (tools/contracts.py) is complete and is what the code and the
README say: every GET endpoint of the API is in it (a new GET without a budget,
a cache status or an index probe fails here), each endpoint's ``@cached_response``
matches its cache status, and the README's budget table is the table's."""
import re
from pathlib import Path

from django.conf import settings

from core.cache.middleware import get_handler_name
from tests.routes import url_patterns
from tools import contracts
from tools.contracts import ENDPOINTS, PRIVATE, PUBLIC, UNCACHED


def api_get_handlers() -> dict[str, object]:
    """route -> the handler a GET of it runs, for every GET route under /api/v1/."""
    found = {}
    for route, pattern in url_patterns():
        callback = pattern.callback
        cls = getattr(callback, "cls", None)
        if not route.startswith("api/v1/") or cls is None:
            continue
        actions = getattr(callback, "actions", None)
        name = get_handler_name(callback)
        handler = getattr(cls, name, None) if name else None
        if handler is not None and (actions is not None or "get" in cls.http_method_names):
            found[route] = handler
    return found


def test_every_get_endpoint_is_in_the_table():
    routes = set(api_get_handlers())
    declared = {e.route for e in ENDPOINTS}
    assert routes - declared == set(), "GET endpoints missing from tools/contracts.py"
    assert declared - routes == set(), "tools/contracts.py names routes that serve no GET"
    assert len(declared) == len(ENDPOINTS), "an endpoint is declared twice"


def test_cache_status_matches_the_handlers():
    for route, handler in api_get_handlers().items():
        endpoint = contracts.BY_ROUTE[route]
        meta = getattr(handler, "cache_meta", None)
        if endpoint.cache == UNCACHED:
            assert meta is None, f"{endpoint.path} is cached but declared uncached"
            assert endpoint.why_uncached, f"{endpoint.path}: say why it is not cached"
        else:
            assert meta is not None, f"{endpoint.path} has no @cached_response"
            assert meta["private"] == (endpoint.cache == PRIVATE), f"{endpoint.path}: private/public differs"


def test_every_endpoint_has_budgets_and_a_probe():
    for e in ENDPOINTS:
        assert e.cache in (PUBLIC, PRIVATE, UNCACHED)
        assert e.signed_in is not None
        # A public endpoint is readable anonymously; a private one is not.
        assert (e.anonymous is not None) == (e.cache != PRIVATE), e.path
        assert e.probes or e.why_no_probe, f"{e.path}: no index probe for explain_plans (or say why)"
        assert (e.anonymous is None or e.anonymous.hit <= e.signed_in.hit), e.path


def test_probes_are_filled_from_the_targets_explain_plans_picks():
    keys = set()
    for e in ENDPOINTS:
        for probe in e.probes:
            keys |= set(re.findall(r"{(\w+)}", probe.path))
            if probe.as_user:
                keys.add(probe.as_user)
    targets = dict.fromkeys(keys, 1)
    filled = contracts.probes(targets)
    assert len(filled) == sum(len(e.probes) for e in ENDPOINTS)
    assert all("{" not in path for _, path, _ in filled)
    labels = [label for label, _, _ in filled]
    assert len(labels) == len(set(labels)), "probe labels must be unique"


def test_readme_budget_table_is_the_contract_table():
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    match = re.search(r"<!-- contracts:start.*?-->\n(.*?)\n<!-- contracts:end -->", readme, re.S)
    assert match, "README.md has no contracts:start/end block"
    assert match.group(1).strip() == contracts.readme_table(), (
        "README budget table differs from tools/contracts.py: paste `python manage.py contracts --readme`"
    )
