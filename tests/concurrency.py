"""Concurrency proofs' one helper: real threads, each on its own database
connection, released together by a barrier (PostgreSQL; see the ``postgres``
marker in tests/conftest.py)."""
import contextvars
import threading

from django.db import close_old_connections, connection


def run_together(*calls, timeout=30, return_exceptions=False):
    """Run each call in its own thread (its own connection, closed at the end), all
    released at once by a barrier; each call's result, in order.

    A call that raises fails the test, unless ``return_exceptions``: then the
    exception stands in its result (for tests whose subject is the refusal). A
    thread still running after ``timeout`` seconds fails the test (a deadlock?).
    Each thread runs in a copy of the caller's context, so the test-wide N+1 guard
    (tests/perf/n_plus_one_guard.py) and its exceptions see the threads' requests too."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def runner(index, call, context):
        try:
            close_old_connections()
            barrier.wait(timeout=10)
            results[index] = context.run(call)
        except Exception as exc:  # noqa: BLE001 - the result under test, or reported below
            results[index] = exc
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, call, contextvars.copy_context())) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a thread hung (deadlock?)"
    if not return_exceptions:
        assert not errors, errors
    return results
