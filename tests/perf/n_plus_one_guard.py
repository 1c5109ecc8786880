"""The test-wide N+1 guard, used by tests/conftest.py around every test body.

django-zeal (in INSTALLED_APPS of config.settings.test) patches the ORM and reports
an N+1: a lazy load of the same relation (or a ``.get()``), from the same line, for
several instances. Detection is switched on per request by zeal's middleware (in
the test settings): every API and admin request of every test is checked, each in
its own context. Test code itself (factories calling ``get_or_create`` in a loop,
assertions walking relations) is not checked; wrap a block in ``n_plus_one_guard()``
to check code called directly, e.g. a service.

Zeal is set to report, not raise (ZEAL_RAISE = False): an exception inside a view
would be turned into a 500 response by the envelope's exception handler and could
go unnoticed. Every report goes to the innermost ``collect_n_plus_one`` block (the
conftest opens one per test), which raises ``NPlusOneFound`` at its end.
"""
import contextvars
from contextlib import contextmanager

from zeal import zeal_context
from zeal.signals import nplusone_detected
from zeal.util import get_stack

_found: contextvars.ContextVar[list | None] = contextvars.ContextVar("n_plus_one_found", default=None)


class NPlusOneFound(AssertionError):
    """A test (or a guarded block) ran an N+1 query pattern."""


def _record(sender, exception, **kwargs):
    found = _found.get()
    if found is None:
        return
    stack = get_stack()  # project frames only; [0] is this function
    where = f" at {stack[1][0]}:{stack[1][1]}" if len(stack) > 1 else ""
    report = f"{exception}{where}"
    if report not in found:
        found.append(report)


nplusone_detected.connect(_record, dispatch_uid="tests.perf.n_plus_one_guard")


@contextmanager
def collect_n_plus_one():
    """Raise ``NPlusOneFound`` at the end of the block if zeal reported an N+1 in it
    (an exception raised by the block itself takes precedence)."""
    found: list[str] = []
    token = _found.set(found)
    try:
        yield found
    finally:
        _found.reset(token)
    if found:
        raise NPlusOneFound("N+1 queries detected:\n  " + "\n  ".join(found))


@contextmanager
def n_plus_one_guard():
    """Check the code run in the block (not only requests) for N+1s."""
    with collect_n_plus_one() as found, zeal_context():
        yield found
