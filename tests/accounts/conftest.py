"""Fixtures of the accounts tests."""
import pytest
from rest_framework.throttling import SimpleRateThrottle


@pytest.fixture
def throttle_rate(monkeypatch):
    """``throttle_rate("login", "2/min")`` for the rest of the test.

    DRF copies ``DEFAULT_THROTTLE_RATES`` into ``SimpleRateThrottle.THROTTLE_RATES``
    when it is imported, so overriding ``settings.REST_FRAMEWORK`` afterwards
    does not reach the throttles: the rate is patched on that dict instead (and
    restored by monkeypatch)."""

    def set_rate(scope: str, rate: str) -> None:
        monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, scope, rate)

    return set_rate
