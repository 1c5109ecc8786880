"""The ``id`` path converter: every ``<id:pk>`` in the API's URLs.

A primary key is a PostgreSQL ``bigint``: 1..2**63-1. Anything else in an id's
place (0, digits beyond bigint) names no row and can never name one, so the URL
does not match: ``404`` before any view, cache lookup or query runs. Views,
querysets and cache scope functions therefore get an ``int`` in range and need
no bounds of their own. ``/jobs/007/`` is ``job 7`` (the same scopes, so the same
cache entries and invalidations, as ``/jobs/7/``).
"""
from django.urls import register_converter
from django.urls.converters import get_converters

# The largest value of a bigint primary key (and of any id in a body or query string).
MAX_ID = 2**63 - 1


class IdConverter:
    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise ValueError("not an id")  # Django: this pattern does not match
        return number

    def to_url(self, value) -> str:
        return str(value)


def register() -> None:
    # Once per process: Django deprecates registering a converter name twice
    # (a test that runs the app registry's ready() again would do that).
    if "id" not in get_converters():
        register_converter(IdConverter, "id")
