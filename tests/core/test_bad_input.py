"""Bad input is a 4xx, always (issue 10, class 1).

Every operation of the OpenAPI schema (every path and method, plus OPTIONS and
HEAD on every path) is sent hostile values, anonymous and signed in: numbers
beyond any database integer in every path id, query parameter and body field,
text that is not valid Unicode, lists whose items are not valid Unicode, JSON
nested beyond reason, and wrong types. No answer may be a 5xx. The schema is
generated in-process (drf-spectacular), so a new endpoint or parameter is
covered without touching this file."""
import json

import pytest
from django.db import transaction
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tests.conftest import auth_client
from tests.payments.factories import PaymentFactory
from tests.ratings.factories import ReviewFactory

pytestmark = pytest.mark.django_db

HUGE = "9" * 30
HUGE_INT = 10**30
NEG_HUGE = "-" + "9" * 30
BAD_UTF8 = b"\xff\xfe\xc3("
DEEP = 10_000


def _operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    ops = []
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                ops.append((path, method, op))
    return schema, ops


def _path_with(path: str, value: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", value, path)


def _body_fields(schema, op) -> dict:
    content = (op.get("requestBody") or {}).get("content", {}).get("application/json")
    if not content:
        return {}
    ref = content["schema"].get("$ref", "")
    component = schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], content["schema"])
    return component.get("properties", {})


def _hostile_bodies(fields) -> list:
    bodies = [
        {name: HUGE_INT for name in fields},
        {name: -HUGE_INT for name in fields},
        {name: [HUGE_INT] for name in fields},
        {name: ["\ud800", "ok\x00"] for name in fields},
        {name: "\ud800" for name in fields},
        {name: {"nested": [HUGE_INT]} for name in fields},
        {name: 1e308 * 10 if False else 1e308 for name in fields},
    ]
    for name in fields:
        bodies.append({name: HUGE_INT})
        bodies.append({name: ["\udcff"]})
    return bodies


@pytest.fixture
def callers(db, monkeypatch):
    # No throttle may answer first (a 429 would hide what the input does).
    from rest_framework.throttling import SimpleRateThrottle

    for scope in list(SimpleRateThrottle.THROTTLE_RATES):
        monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, scope, "1000000/min")
    payment = PaymentFactory()
    review = ReviewFactory()
    client = payment.payer
    worker = payment.recipient
    return {
        "anon": None,
        "client": client,
        "worker": worker,
        "ids": [str(payment.pk), str(payment.job_id), str(review.pk), str(client.pk)],
    }


def _send(user, method, url, body=None, raw=None, content_type="application/json"):
    # A fresh client (and token) per request: a logout in the loop must not turn
    # every later request of that user into a 401 that tests nothing.
    api = auth_client(user) if user is not None else APIClient()
    api.raise_request_exception = False
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    # Each request in a savepoint: on PostgreSQL a database error inside one request
    # must not abort the test's transaction for all the requests after it.
    with transaction.atomic():
        if data is None:
            response = getattr(api, method)(url)
        else:
            response = getattr(api, method)(url, data=data, content_type=content_type)
        if response.status_code >= 500:
            transaction.set_rollback(True)
        return response


def test_no_input_is_a_server_error(callers):
    schema, ops = _operations()
    failures = []

    def check(who, method, url, response):
        if response.status_code >= 500:
            failures.append(f"{who} {method.upper()} {url} -> {response.status_code}")

    for path, method, op in ops:
        params = [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]
        fields = _body_fields(schema, op)
        for who in ("anon", "client", "worker"):
            api = callers[who]
            for value in (HUGE, NEG_HUGE, "0", "01", callers["ids"][0], "%ff"):
                url = _path_with(path, value)
                check(who, method, url, _send(api, method, url))
                if value in (HUGE, callers["ids"][0]):
                    check(who, "options", url, _send(api, "options", url))
                    check(who, "head", url, _send(api, "head", url))
            url = _path_with(path, callers["ids"][0])
            for name in params:
                for value in (HUGE, NEG_HUGE, "1e309", "NaN", "Infinity", "\x00", "%ff"):
                    check(who, method, f"{url}?{name}={value}", _send(api, method, f"{url}?{name}={value}"))
                    check(who, method, f"{url}?{name}={value}", _send(api, method, f"{url}?{name}={value}&{name}={value}"))
            if method in ("post", "put", "patch"):
                for body in _hostile_bodies(fields):
                    check(who, method, f"{url} {body!r:.80}", _send(api, method, url, body=body))
                deep = "[" * DEEP + "]" * DEEP
                check(who, method, f"{url} deep list", _send(api, method, url, raw=deep))
                deep_obj = '{"a":' * DEEP + "1" + "}" * DEEP
                check(who, method, f"{url} deep object", _send(api, method, url, raw=deep_obj))
                check(who, method, f"{url} bad utf-8", _send(api, method, url, raw=b'{"a": "' + BAD_UTF8 + b'"}'))
                for name in fields:
                    raw = b'{"' + name.encode() + b'": ["' + BAD_UTF8 + b'"]}'
                    check(who, method, f"{url} bad utf-8 list {name}", _send(api, method, url, raw=raw))
                    raw = b'{"' + name.encode() + b'": "\\ud800"}'
                    check(who, method, f"{url} lone surrogate {name}", _send(api, method, url, raw=raw))
                    raw = b'{"' + name.encode() + b'": ["\\udcff"]}'
                    check(who, method, f"{url} lone surrogate list {name}", _send(api, method, url, raw=raw))
    assert not failures, "\n".join(sorted(set(failures)))


# The classes one by one (each was a 500 before core.parsers / core.metadata).

def _post(api, url, raw):
    api.raise_request_exception = False
    return api.post(url, data=raw, content_type="application/json")


@pytest.mark.parametrize(
    "raw",
    [
        "[" * DEEP + "]" * DEEP,  # RecursionError while parsing
        '{"a":' * 200 + "1" + "}" * 200,  # parses, but no body of this API is that deep
        '{"role": "\\ud800", "password": "x"}',  # lone surrogate: no UTF-8 encoder takes it
        '{"role": ["\\udcff"], "password": "x"}',  # ... inside a list
        '{"first_name": ["a\\u0000b"], "password": "x"}',  # NUL in a list: PostgreSQL's text refuses it
        f'{{"email": "a@b.c", "password": "x", "n": {HUGE_INT}}}',  # beyond BIGINT
        b'{"email": "\xff\xfe", "password": "x"}',  # not UTF-8 at all
    ],
    ids=["deep-recursion", "deep", "surrogate", "surrogate-in-list", "nul", "huge-int", "bad-utf8"],
)
def test_hostile_json_is_a_400(anon, raw):
    response = _post(anon, "/api/v1/auth/register/", raw)
    assert response.status_code == 400, response.content[:200]
    assert response.json()["error"] == "validation_error"


def test_parser_keeps_ordinary_json(anon):
    response = _post(anon, "/api/v1/auth/login/", '{"email": "nobody@example.com", "password": "é ü 😀"}')
    assert response.status_code == 400
    assert "Unable to log in" in response.json()["message"]


def test_options_on_a_view_without_body_is_200(client_user):
    api = auth_client(client_user)
    for url in ("/api/v1/auth/logout/", "/api/v1/auth/otp/request/"):
        response = api.options(url)
        assert response.status_code == 200, (url, response.content[:200])
