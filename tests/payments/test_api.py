"""Payments over HTTP (docs/API.md): shapes, who may do what, idempotency, bad input
(always a 4xx envelope, never a 500), mass assignment and the throttle."""
from decimal import Decimal

import pytest
from rest_framework import serializers

from core.throttling import UserScopedThrottle
from jobs.models import ApplicationStatus, JobStatus
from payments.models import Payment, PaymentStatus
from payments.views import PaymentViewSet
from tests.accounts.factories import ClientUserFactory, StaffUserFactory, WorkerUserFactory
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, JobFactory
from tests.payments.factories import PaymentFactory, hire

pytestmark = pytest.mark.django_db

PRIVATE_FIELDS = {"email", "phone", "idempotency_key", "request_fingerprint", "gateway_reference"}


def keys_in(value):
    """Every dict key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_in(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_in(v)}
    return set()


def assert_error(response, status, error):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False and body["error"] == error
    assert body["correlation_id"] == response["X-Request-ID"]
    return body


@pytest.fixture
def job(client_user, worker_user):
    return hire(client=client_user, worker=worker_user)


@pytest.fixture
def body(job, worker_user):
    return {"job": job.pk, "recipient": worker_user.pk, "amount": "25.50", "currency": "EUR"}


def post(client, data, key="key-1", **extra):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post("/api/v1/payments/", data, format="json", **headers, **extra)


# --- create ------------------------------------------------------------------

def test_create_201_then_same_key_200_with_the_same_payment(as_client, body, client_user, worker_user, job):
    first = post(as_client, body)
    assert first.status_code == 201, first.content
    data = first.json()["data"]
    assert set(data) >= {"id", "job", "payer", "recipient", "amount", "currency", "status", "reference", "created_at"}
    assert data["job"]["id"] == job.pk and data["job"]["title"] == job.title
    assert data["payer"]["id"] == client_user.pk and data["recipient"]["id"] == worker_user.pk
    assert set(data["payer"]) >= {"id", "first_name", "last_name", "rating_avg"}
    assert (data["amount"], data["currency"], data["status"]) == ("25.50", "EUR", "pending")
    assert data["reference"].startswith("PAY-")
    assert not keys_in(first.json()) & PRIVATE_FIELDS

    again = post(as_client, {**body, "amount": "25.5"})  # the same amount, written differently
    assert again.status_code == 200
    assert again.json()["data"] == data
    assert Payment.objects.count() == 1


def test_same_key_other_body_is_409(as_client, body):
    assert post(as_client, body).status_code == 201
    assert_error(post(as_client, {**body, "amount": "30.00"}), 409, "conflict")
    assert Payment.objects.count() == 1


def test_new_key_for_a_paid_worker_is_409_naming_the_live_payment(as_client, body):
    first = post(as_client, body, key="a").json()["data"]
    result = assert_error(post(as_client, body, key="b"), 409, "conflict")
    assert first["reference"] in result["message"]
    assert result["details"]["payment"] == {
        "id": first["id"], "reference": first["reference"], "status": "pending", "amount": "25.50"
    }
    assert Payment.objects.count() == 1


@pytest.mark.parametrize("ended", [PaymentStatus.FAILED, PaymentStatus.REFUNDED])
def test_new_key_after_a_failed_or_refunded_payment_is_a_new_payment(as_client, body, ended):
    first = post(as_client, body, key="a").json()["data"]
    Payment.objects.filter(pk=first["id"]).update(status=ended)
    second = post(as_client, body, key="b")
    assert second.status_code == 201, second.content
    assert second.json()["data"]["id"] != first["id"]
    assert Payment.objects.count() == 2


@pytest.mark.parametrize(
    "key",
    [None, "", "   ", "k" * 256, "ключ", "tab\tinside", "new\nline", " leading"],
    ids=["missing", "empty", "blank", "oversize", "non-ascii", "tab", "newline", "leading-space"],
)
def test_bad_idempotency_key_is_400(as_client, body, key):
    result = assert_error(post(as_client, body, key=key), 400, "validation_error")
    assert "Idempotency-Key" in result["details"]
    assert Payment.objects.count() == 0


def test_longest_idempotency_key_is_accepted(as_client, body):
    assert post(as_client, body, key="k" * 255).status_code == 201
    Payment.objects.update(status=PaymentStatus.FAILED)  # one live payment per job and worker
    assert post(as_client, body, key="with inner spaces ~!").status_code == 201


def test_only_clients_create(as_worker, anon, body):
    assert_error(post(as_worker, body), 403, "permission_denied")
    assert_error(post(anon, body), 401, "not_authenticated")
    assert Payment.objects.count() == 0


@pytest.mark.parametrize(
    "change, field",
    [
        ({"amount": "abc"}, "amount"),
        ({"amount": "-5.00"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": "1e400"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "12345678901.00"}, "amount"),
        ({"amount": None}, "amount"),
        ({"currency": "USD"}, "currency"),
        ({"currency": "XXX"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"job": 999999}, "job"),
        ({"job": "abc"}, "job"),
        ({"job": 10**20}, "job"),
        ({"recipient": 999999}, "recipient"),
        ({"recipient": -1}, "recipient"),
    ],
)
def test_bad_body_is_400(as_client, body, change, field):
    result = assert_error(post(as_client, {**body, **change}), 400, "validation_error")
    assert field in result["details"]
    assert Payment.objects.count() == 0


def test_missing_fields_are_400(as_client):
    result = assert_error(post(as_client, {}), 400, "validation_error")
    assert set(result["details"]) == {"job", "recipient", "amount", "currency"}


def test_recipient_must_be_accepted_on_the_callers_job(as_client, body, job):
    pending = ApplicationFactory(job=job, status=ApplicationStatus.PENDING).worker
    assert "recipient" in assert_error(post(as_client, {**body, "recipient": pending.pk}), 400, "validation_error")[
        "details"
    ]
    stranger = WorkerUserFactory()
    assert_error(post(as_client, {**body, "recipient": stranger.pk}, key="k2"), 400, "validation_error")
    others = hire()
    other_worker = others.applications.get().worker
    result = post(as_client, {**body, "job": others.pk, "recipient": other_worker.pk}, key="k3")
    assert "job" in assert_error(result, 400, "validation_error")["details"]
    assert Payment.objects.count() == 0


def test_lowercase_currency_is_normalised(as_client, body):
    response = post(as_client, {**body, "currency": "eur"})
    assert response.status_code == 201 and response.json()["data"]["currency"] == "EUR"


def test_mass_assignment_changes_nothing(as_client, body, client_user):
    other = ClientUserFactory()
    response = post(
        as_client,
        {**body, "status": "succeeded", "payer": other.pk, "reference": "HACKED", "id": 4242,
         "gateway_reference": "x", "idempotency_key": "other"},
    )
    assert response.status_code == 201
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.PENDING
    assert payment.payer_id == client_user.pk
    assert payment.reference != "HACKED" and payment.pk != 4242
    assert payment.idempotency_key == "key-1" and payment.gateway_reference == ""


def test_unicode_and_malformed_bodies(as_client):
    response = as_client.post(
        "/api/v1/payments/", data=b'{"job": 1,', content_type="application/json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert_error(response, 400, "validation_error")
    response = as_client.post(
        "/api/v1/payments/", data="job=1", content_type="text/plain", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert_error(response, 415, "unsupported_media_type")
    response = as_client.post(
        "/api/v1/payments/", data='{"amount": "€"}'.encode(), content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert_error(response, 400, "validation_error")
    response = as_client.post(
        "/api/v1/payments/", data=b"[1, 2]", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert_error(response, 400, "validation_error")


class LaxPaymentCreateSerializer(serializers.Serializer):
    """No friendly checks: lets values reach the database's own constraints."""

    job = serializers.IntegerField()
    recipient = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()


@pytest.mark.parametrize("amount", ["0.00", "-1.00"])
def test_database_amount_check_is_a_400_through_the_api(as_client, body, monkeypatch, amount):
    monkeypatch.setattr(PaymentViewSet, "create_serializer_class", LaxPaymentCreateSerializer)
    result = assert_error(post(as_client, {**body, "amount": amount}), 400, "validation_error")
    assert "amount" in result["details"]
    assert Payment.objects.count() == 0


def test_database_self_payment_check_is_a_400_through_the_api(as_client, client_user):
    job = JobFactory(client=client_user, status=JobStatus.COMPLETED)
    ApplicationFactory(job=job, worker=client_user, status=ApplicationStatus.ACCEPTED)  # never made by the API
    body = {"job": job.pk, "recipient": client_user.pk, "amount": "10.00", "currency": "EUR"}
    result = assert_error(post(as_client, body), 400, "validation_error")
    assert "recipient" in result["details"]


def test_throttle_is_429(as_client, body, monkeypatch):
    monkeypatch.setattr(UserScopedThrottle, "THROTTLE_RATES", {"payments": "2/min"})
    assert post(as_client, body, key="a").status_code == 201
    assert post(as_client, body, key="a").status_code == 200  # a replay counts too
    assert_error(post(as_client, body, key="c"), 429, "throttled")
    # Reads are not throttled.
    assert as_client.get("/api/v1/payments/").status_code == 200


# --- lists ---------------------------------------------------------------------

def test_list_shows_payments_as_payer_and_as_recipient_newest_first(client_user, worker_user):
    older = PaymentFactory(payer=client_user, recipient=worker_user)
    newer = PaymentFactory(payer=client_user, recipient=worker_user, status=PaymentStatus.SUCCEEDED)
    PaymentFactory()  # someone else's
    for user in (client_user, worker_user):
        response = auth_client(user).get("/api/v1/payments/")
        assert response.status_code == 200
        body = response.json()
        assert [p["id"] for p in body["data"]] == [newer.pk, older.pk]
        assert body["pagination"]["total_items"] == 2
        assert not keys_in(body) & PRIVATE_FIELDS
    stranger = auth_client(ClientUserFactory()).get("/api/v1/payments/")
    assert stranger.json()["data"] == []


def test_list_status_filter(as_client, client_user):
    pending = PaymentFactory(payer=client_user)
    PaymentFactory(payer=client_user, status=PaymentStatus.SUCCEEDED)
    response = as_client.get("/api/v1/payments/?status=pending")
    assert [p["id"] for p in response.json()["data"]] == [pending.pk]
    assert_error(as_client.get("/api/v1/payments/?status=bogus"), 400, "validation_error")


def test_list_needs_auth(anon):
    assert_error(anon.get("/api/v1/payments/"), 401, "not_authenticated")


# --- the authorization matrix over every endpoint that takes an id --------------

@pytest.fixture
def cast():
    payment = PaymentFactory()
    return {
        "payment": payment,
        "payer": auth_client(payment.payer),
        "recipient": auth_client(payment.recipient),
        "unrelated": auth_client(ClientUserFactory()),
        "staff": auth_client(StaffUserFactory()),
    }


@pytest.mark.parametrize(
    "who, status",
    [("payer", 200), ("recipient", 200), ("unrelated", 404), ("anonymous", 401), ("staff", 200)],
)
def test_detail_matrix(cast, anon, who, status):
    client = anon if who == "anonymous" else cast[who]
    response = client.get(f"/api/v1/payments/{cast['payment'].pk}/")
    assert response.status_code == status
    if status == 200:
        assert response.json()["data"]["id"] == cast["payment"].pk
        assert not keys_in(response.json()) & PRIVATE_FIELDS


def test_unknown_or_huge_payment_id_is_404(as_staff):
    assert_error(as_staff.get("/api/v1/payments/999999/"), 404, "not_found")
    assert_error(as_staff.get(f"/api/v1/payments/{10**20}/"), 404, "not_found")
    assert_error(as_staff.post(f"/api/v1/payments/{10**20}/refund/"), 404, "not_found")


@pytest.mark.parametrize(
    "who, status",
    [("recipient", 403), ("unrelated", 404), ("anonymous", 401), ("staff", 403), ("payer", 200)],
)
def test_confirm_matrix(cast, anon, who, status):
    client = anon if who == "anonymous" else cast[who]
    response = client.post(f"/api/v1/payments/{cast['payment'].pk}/confirm/")
    assert response.status_code == status
    cast["payment"].refresh_from_db()
    assert cast["payment"].status == ("succeeded" if status == 200 else "pending")


def test_confirm_twice_is_409(cast):
    url = f"/api/v1/payments/{cast['payment'].pk}/confirm/"
    assert cast["payer"].post(url).json()["data"]["status"] == "succeeded"
    assert_error(cast["payer"].post(url), 409, "conflict")


@pytest.mark.parametrize(
    "who, status",
    [("recipient", 403), ("unrelated", 404), ("anonymous", 401), ("staff", 200), ("payer", 200)],
)
def test_refund_matrix(cast, anon, who, status):
    payment = cast["payment"]
    Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.SUCCEEDED)
    client = anon if who == "anonymous" else cast[who]
    response = client.post(f"/api/v1/payments/{payment.pk}/refund/")
    assert response.status_code == status
    payment.refresh_from_db()
    assert payment.status == ("refunded" if status == 200 else "succeeded")


def test_refund_states(cast):
    url = f"/api/v1/payments/{cast['payment'].pk}/refund/"
    assert_error(cast["payer"].post(url), 409, "conflict")  # still pending
    cast["payer"].post(f"/api/v1/payments/{cast['payment'].pk}/confirm/")
    assert cast["payer"].post(url).json()["data"]["status"] == "refunded"
    assert_error(cast["staff"].post(url), 409, "conflict")


def test_declined_confirm_answers_the_failed_payment(cast, settings):
    settings.PAYMENT_GATEWAY = "tests.payments.test_services.DecliningGateway"
    response = cast["payer"].post(f"/api/v1/payments/{cast['payment'].pk}/confirm/")
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "failed"
    assert response.json()["message"] == "The payment gateway declined the charge."


def test_gateway_outage_is_503(cast, settings):
    settings.PAYMENT_GATEWAY = "tests.payments.test_services.BrokenGateway"
    response = cast["payer"].post(f"/api/v1/payments/{cast['payment'].pk}/confirm/")
    assert_error(response, 503, "service_unavailable")


@pytest.mark.parametrize(
    "who, status",
    [("payer", 200), ("recipient", 404), ("unrelated", 404), ("anonymous", 401), ("staff", 200)],
)
def test_user_payments_matrix(cast, anon, who, status):
    """``/users/{payer}/payments/``: the payer or staff; even the counterparty gets 404."""
    client = anon if who == "anonymous" else cast[who]
    response = client.get(f"/api/v1/users/{cast['payment'].payer_id}/payments/")
    assert response.status_code == status
    if status == 200:
        assert [p["id"] for p in response.json()["data"]] == [cast["payment"].pk]


def test_user_payments_for_recipient_and_status_filter(cast):
    url = f"/api/v1/users/{cast['payment'].recipient_id}/payments/"
    assert [p["id"] for p in cast["recipient"].get(url).json()["data"]] == [cast["payment"].pk]
    assert cast["recipient"].get(url + "?status=refunded").json()["data"] == []
    assert_error(cast["recipient"].get(url + "?status=nope"), 400, "validation_error")


# --- balance -----------------------------------------------------------------------

def test_balance(client_user, worker_user):
    PaymentFactory(payer=client_user, recipient=worker_user, amount=Decimal("10.00"), status="succeeded")
    PaymentFactory(payer=client_user, recipient=worker_user, amount=Decimal("2.25"), status="pending")
    PaymentFactory(payer=client_user, recipient=worker_user, amount=Decimal("8.00"), status="refunded")
    usd = hire(client=client_user, worker=worker_user, currency="USD")
    PaymentFactory(payer=client_user, recipient=worker_user, job=usd, currency="USD", amount=Decimal("3.00"),
                   status="succeeded")
    paid = auth_client(client_user).get("/api/v1/users/me/balance/").json()["data"]
    assert {k: paid[k] for k in ("paid_total", "received_total", "pending_total", "currency")} == {
        "paid_total": "10.00", "received_total": "0.00", "pending_total": "2.25", "currency": "EUR",
    }
    assert {row["currency"]: row["paid_total"] for row in paid["by_currency"]} == {"EUR": "10.00", "USD": "3.00"}
    got = auth_client(worker_user).get("/api/v1/users/me/balance/").json()["data"]
    assert (got["paid_total"], got["received_total"], got["pending_total"]) == ("0.00", "10.00", "2.25")


def test_balance_of_a_new_user_is_zero(as_worker, anon):
    data = as_worker.get("/api/v1/users/me/balance/").json()["data"]
    assert data == {"currency": "EUR", "paid_total": "0.00", "received_total": "0.00", "pending_total": "0.00",
                    "by_currency": []}
    assert_error(anon.get("/api/v1/users/me/balance/"), 401, "not_authenticated")


def test_huge_user_id_in_path_is_a_404_not_a_500(as_staff):
    # Beyond bigint: the ``id`` path converter refuses it (core/converters.py).
    assert_error(as_staff.get(f"/api/v1/users/{10**20}/payments/"), 404, "not_found")
