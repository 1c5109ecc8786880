"""Prerequisites from outside the venv (a Debian package's command, Linux's /proc,
two CPUs to pin processes to).

``needs(available, reason)`` is a mark for a test or a module (``pytestmark``): with
the prerequisite there it does nothing; without it the test is skipped with
``reason`` on a developer's machine, but fails under ``CI=true`` (.ci/run installs or
expects every one of them), so a prerequisite missing in CI is a failure, never a
skip that quietly changes the counts. tests/conftest.py fails the marked tests."""
import os

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def needs(available: bool, reason: str) -> pytest.MarkDecorator:
    if available:
        return pytest.mark.skipif(False, reason=reason)
    if IN_CI:
        return pytest.mark.missing_prerequisite(reason)
    return pytest.mark.skip(reason=reason)
