"""Admin tests run under the test-wide N+1 guard (django-zeal) with one exception.

Zeal keys a query to its nearest project frame. In an admin request nearly all
code is Django's, so distinct single ``User.get()`` calls (the session
middleware's, the admin's ``get_object``, a form's ModelChoiceField cleaning a
user id) all key to the same middleware line and look like one ``.get()`` in a
loop. They are a fixed number of queries: tests/perf/test_admin_budgets.py proves
every admin page's count constant at two data sizes. Every other N+1 is still
reported."""
import pytest
from zeal import zeal_ignore

SAME_LINE_USER_GETS = [{"model": "accounts.User", "field": "get()"}]


@pytest.fixture(autouse=True)
def _distinct_user_gets_are_not_a_loop():
    with zeal_ignore(SAME_LINE_USER_GETS):
        yield
