"""The OpenAPI document says what the wire says (core/schema.py, docs/API.md)."""
import re

import pytest

from core.envelope import ERROR_CODES

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def resolve(schema, ref_or_schema):
    ref = ref_or_schema.get("$ref")
    if not ref:
        return ref_or_schema
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_every_success_body_is_an_envelope(schema):
    seen = 0
    for path, method, operation in operations(schema):
        for code, response in operation["responses"].items():
            if not code.startswith("2"):
                continue
            if code == "204":
                assert "content" not in response, (method, path)
                continue
            body = resolve(schema, response["content"]["application/json"]["schema"])
            assert {"success", "data", "message", "correlation_id", "timestamp"} <= set(body["required"])
            if body["properties"]["data"].get("type") == "array":
                assert body["properties"]["pagination"] == {"$ref": "#/components/schemas/Pagination"}
            seen += 1
    assert seen >= 35


def test_single_object_bodies_are_wrapped(schema):
    job = schema["paths"]["/api/v1/jobs/{id}/"]["get"]["responses"]["200"]
    envelope = resolve(schema, job["content"]["application/json"]["schema"])
    assert envelope["properties"]["data"] == {"$ref": "#/components/schemas/Job"}
    jobs = schema["paths"]["/api/v1/jobs/"]["get"]["responses"]["200"]
    page = resolve(schema, jobs["content"]["application/json"]["schema"])
    assert page["properties"]["data"] == {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}


def test_errors_documented_with_the_error_envelope(schema):
    codes = schema["components"]["schemas"]["ErrorCode"]["enum"]
    assert set(codes) == set(ERROR_CODES.values())
    error = schema["components"]["schemas"]["Error"]
    assert error["properties"]["error"] == {"$ref": "#/components/schemas/ErrorCode"}
    for path, method, operation in operations(schema):
        errors = {code: r for code, r in operation["responses"].items() if code >= "400"}
        for response in errors.values():
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        if operation.get("security"):
            assert "401" in errors, (method, path)
        if "{id}" in path:
            assert "404" in errors, (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= set(errors), (method, path)


@pytest.mark.parametrize(
    "method, path, expected",
    [
        ("post", "/api/v1/jobs/{id}/apply/", {"201", "409", "429"}),
        ("post", "/api/v1/applications/{id}/accept/", {"200", "403", "404", "409"}),
        ("post", "/api/v1/payments/", {"200", "201", "400", "409", "429"}),
        ("post", "/api/v1/payments/{id}/confirm/", {"200", "409", "503"}),
        ("post", "/api/v1/reviews/", {"201", "400", "403", "409"}),
        ("post", "/api/v1/auth/register/", {"201", "400", "409", "429"}),
        ("get", "/api/v1/health/", {"200", "503"}),
        ("post", "/api/v1/jobs/{id}/save/", {"200", "201"}),
        ("delete", "/api/v1/jobs/{id}/save/", {"204"}),
        ("delete", "/api/v1/jobs/{id}/", {"204", "409"}),
        ("post", "/api/v1/auth/logout/", {"204"}),
    ],
)
def test_statuses_match_behaviour(schema, method, path, expected):
    codes = set(schema["paths"][path][method]["responses"])
    assert expected <= codes
    if method == "delete":
        assert not {"200", "201"} & codes


def test_path_ids_are_integers(schema):
    for path, method, operation in operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["schema"]["type"] == "integer", (method, path, parameter)


def _query_params(schema, path):
    return {p["name"]: p for p in schema["paths"][path]["get"]["parameters"] if p["in"] == "query"}


def test_each_list_documents_the_filters_it_honours(schema):
    jobs = _query_params(schema, "/api/v1/jobs/")
    assert set(jobs) == {
        "page", "per_page", "status", "category", "skill", "city", "min_rate", "max_rate", "search", "client",
        "ordering",
    }
    assert jobs["client"]["schema"]["type"] == "integer"
    assert jobs["min_rate"]["schema"]["type"] == "number"
    ordering = jobs["ordering"]
    assert ordering["schema"]["type"] == "array" and ordering["explode"] is False  # ?ordering=rate,-start_at
    applications = _query_params(schema, "/api/v1/jobs/{id}/applications/")
    assert set(applications) == {"page", "per_page", "status"}
    assert set(applications["status"]["schema"]["enum"]) == {
        "pending", "accepted", "rejected", "withdrawn", "cancelled", "hire_cancelled",
    }
    assert set(_query_params(schema, "/api/v1/reviews/")) == {"page", "per_page", "reviewed", "reviewer", "job"}
    assert _query_params(schema, "/api/v1/reviews/")["reviewed"]["schema"]["type"] == "integer"


@pytest.mark.django_db
def test_a_job_applications_list_honours_status(anon, client_user):
    from tests.conftest import auth_client
    from tests.jobs.factories import ApplicationFactory, JobFactory

    job = JobFactory(client=client_user)
    ApplicationFactory(job=job, status="pending")
    rejected = ApplicationFactory(job=job, status="rejected")
    owner = auth_client(client_user)
    body = owner.get(f"/api/v1/jobs/{job.pk}/applications/?status=rejected").json()
    assert [a["id"] for a in body["data"]] == [rejected.pk]
    assert owner.get(f"/api/v1/jobs/{job.pk}/applications/?status=nope").status_code == 400
    assert len(owner.get(f"/api/v1/jobs/{job.pk}/applications/").json()["data"]) == 2


def test_token_auth_declared_and_public_operations_need_none(schema):
    token = schema["components"]["securitySchemes"]["tokenAuth"]
    assert token == {**token, "type": "apiKey", "in": "header", "name": "Authorization"}
    assert "Token" in token["description"]
    public = {
        ("get", "/api/v1/jobs/"), ("get", "/api/v1/jobs/{id}/"), ("get", "/api/v1/users/{id}/"),
        ("get", "/api/v1/reviews/"), ("post", "/api/v1/auth/register/"), ("post", "/api/v1/auth/login/"),
        ("get", "/api/v1/categories/"), ("get", "/api/v1/skills/"),
    }
    public.add(("get", "/api/v1/health/"))
    for method, path in public:
        assert "security" not in schema["paths"][path][method], (method, path)
    assert "security" not in schema  # no document-wide requirement either
    for method, path in [("post", "/api/v1/jobs/"), ("get", "/api/v1/users/me/"), ("post", "/api/v1/payments/")]:
        security = schema["paths"][path][method]["security"]
        assert {"tokenAuth": []} in security and {} not in security


INTERNAL = re.compile(r"budget|\bqueries\b|cache[ds]? (entry|key|scope)|\bscope|\.py\b|API\.md|ARCHITECTURE|settings\.", re.I)


def test_descriptions_are_for_api_consumers(schema):
    texts = [schema["info"].get("description", "")]
    for _path, _method, operation in operations(schema):
        texts += [operation.get("description", ""), operation.get("summary", "")]
        texts += [p.get("description", "") for p in operation.get("parameters", [])]
        texts += [r.get("description", "") for r in operation["responses"].values()]
    for component in schema["components"]["schemas"].values():
        texts.append(component.get("description", ""))
        texts += [p.get("description", "") for p in component.get("properties", {}).values() if isinstance(p, dict)]
    leaks = [text for text in texts if INTERNAL.search(text)]
    assert leaks == []
