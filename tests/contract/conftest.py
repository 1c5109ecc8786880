"""Fixtures of the contract tests (a live server answering a generated client or curl)."""
import pytest


@pytest.fixture(scope="module")
def short_lived_connections():
    """The live server answers each request on a thread of its own: without a
    persistent connection per thread, none is left open when the test database is
    dropped."""
    from django.db import connections

    saved = connections.settings["default"].get("CONN_MAX_AGE", 0)
    connections.settings["default"]["CONN_MAX_AGE"] = 0
    yield
    connections.settings["default"]["CONN_MAX_AGE"] = saved
