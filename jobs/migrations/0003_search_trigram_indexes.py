"""Trigram indexes for ``GET /jobs/?search=`` (PostgreSQL only).

The filter is ``icontains`` on title or description, which Django writes as
``UPPER(col::text) LIKE UPPER('%term%')``: no B-tree can serve a leading ``%``, so
without these every search read the whole jobs table. A GIN trigram index on the
same ``UPPER(...)`` expression serves it (a BitmapOr of the two for the OR);
measured by ``manage.py explain_plans``. pg_trgm is a trusted extension (PostgreSQL
13+): the database owner may create it. SQLite has no equivalent: there the
migration does nothing (and the indexes are not in ``Meta.indexes``, which the
SQLite schema must match too).
"""
from django.db import migrations

INDEXES = {
    "job_title_trgm": 'UPPER("title"::text)',
    "job_description_trgm": 'UPPER("description"::text)',
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, expression in INDEXES.items():
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "jobs_job" USING gin ({expression} gin_trgm_ops)')


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("jobs", "0002_indexes_proven_by_explain")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
