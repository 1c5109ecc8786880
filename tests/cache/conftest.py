"""Fixtures shared by the cache-layer tests."""
import pytest
from rest_framework.views import APIView


@pytest.fixture
def dispatches(monkeypatch):
    """The paths of the requests that reached DRF (a fast-path answer never does)."""
    calls = []
    original = APIView.dispatch

    def counting(self, request, *args, **kwargs):
        calls.append(request.path)
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(APIView, "dispatch", counting)
    return calls
