"""The envelope, request id and health endpoint (docs/API.md "Envelope", "Request id")."""
import re

import pytest


@pytest.mark.django_db
def test_health_ok_in_envelope(anon):
    response = anon.get("/api/v1/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["data"] == {"database": "ok", "cache": "ok"}
    assert body["message"] is None
    assert body["correlation_id"] == response["X-Request-ID"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", body["timestamp"])


@pytest.mark.django_db
def test_request_id_is_echoed_when_valid(anon):
    response = anon.get("/api/v1/health/", HTTP_X_REQUEST_ID="abc-123_x.y")
    assert response["X-Request-ID"] == "abc-123_x.y"
    assert response.json()["correlation_id"] == "abc-123_x.y"


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["", "a" * 65, "has space", "semi;colon", "ünïcode"])
def test_invalid_request_id_is_replaced(anon, bad):
    response = anon.get("/api/v1/health/", HTTP_X_REQUEST_ID=bad)
    assert re.match(r"^[0-9a-f]{32}$", response["X-Request-ID"])


@pytest.mark.django_db
def test_unknown_api_path_is_enveloped_404(anon):
    response = anon.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    body = response.json()
    assert body["success"] is False
    assert body["error"] == "not_found"
    assert body["correlation_id"] == response["X-Request-ID"]
