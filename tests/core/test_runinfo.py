"""``manage.py runinfo`` (printed by ``make run``) names the database and cache
this configuration really runs on."""
from io import StringIO

from django.core.management import call_command
from django.db import connection

from tests.conftest import USES_REDIS


def test_runinfo_names_the_real_database_and_cache():
    out = StringIO()
    call_command("runinfo", stdout=out)
    text = out.getvalue()
    if connection.vendor == "postgresql":
        assert "Database: PostgreSQL, database " in text
    else:
        assert "Database: SQLite" in text
    if USES_REDIS:
        assert "Cache:    Redis at redis://" in text and "@" not in text  # no password shown
    else:
        assert "Cache:    local memory" in text
