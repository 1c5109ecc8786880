"""Read-your-writes for the payments endpoints: GET (MISS) -> GET (HIT) -> write ->
the next GET shows the write, for every caller whose answer it changes.
``transaction=True`` so that the scope bumps, which run in
``transaction.on_commit``, really happen as in production."""
import pytest

from jobs.models import JobStatus
from tests.accounts.factories import ClientUserFactory, StaffUserFactory
from tests.cache.test_jobs_cache import fresh, warm
from tests.conftest import auth_client
from tests.payments.factories import PaymentFactory, hire

pytestmark = pytest.mark.django_db(transaction=True)


def test_created_payment_shows_in_every_list_and_balance():
    job = hire()
    payer, recipient = job.client, job.applications.get().worker
    as_payer, as_recipient, as_staff = auth_client(payer), auth_client(recipient), auth_client(StaffUserFactory())
    views = [
        (as_payer, "/api/v1/payments/"),
        (as_recipient, "/api/v1/payments/"),
        (as_payer, f"/api/v1/users/{payer.pk}/payments/"),
        (as_staff, f"/api/v1/users/{recipient.pk}/payments/"),
    ]
    for caller, path in views:
        assert warm(caller, path) == []
    assert warm(as_recipient, "/api/v1/users/me/balance/")["pending_total"] == "0.00"

    body = {"job": job.pk, "recipient": recipient.pk, "amount": "30.00", "currency": "EUR"}
    created = as_payer.post("/api/v1/payments/", body, format="json", HTTP_IDEMPOTENCY_KEY="c1")
    assert created.status_code == 201
    payment_id = created.json()["data"]["id"]
    for caller, path in views:
        assert [p["id"] for p in fresh(caller, path)] == [payment_id]
    assert fresh(as_recipient, "/api/v1/users/me/balance/")["pending_total"] == "30.00"
    assert fresh(as_payer, "/api/v1/users/me/balance/")["pending_total"] == "30.00"


def test_confirm_and_refund_show_in_detail_lists_and_balance():
    payment = PaymentFactory()
    as_payer, as_recipient = auth_client(payment.payer), auth_client(payment.recipient)
    as_staff = auth_client(StaffUserFactory())
    detail = f"/api/v1/payments/{payment.pk}/"
    for caller in (as_payer, as_recipient, as_staff):
        assert warm(caller, detail)["status"] == "pending"
    warm(as_recipient, "/api/v1/payments/")
    assert warm(as_recipient, "/api/v1/users/me/balance/")["received_total"] == "0.00"

    assert as_payer.post(f"{detail}confirm/").status_code == 200
    for caller in (as_payer, as_recipient, as_staff):
        assert fresh(caller, detail)["status"] == "succeeded"
    assert fresh(as_recipient, "/api/v1/payments/")[0]["status"] == "succeeded"
    assert fresh(as_recipient, "/api/v1/users/me/balance/")["received_total"] == "50.00"
    warm(as_recipient, "/api/v1/users/me/balance/")
    warm(as_staff, detail)

    assert as_staff.post(f"{detail}refund/").status_code == 200
    assert fresh(as_staff, detail)["status"] == "refunded"
    assert fresh(as_payer, detail)["status"] == "refunded"
    assert fresh(as_recipient, "/api/v1/users/me/balance/")["received_total"] == "0.00"


def test_job_and_user_changes_show_in_payment_lists():
    payment = PaymentFactory()
    as_payer = auth_client(payment.payer)
    listing, detail = "/api/v1/payments/", f"/api/v1/payments/{payment.pk}/"
    warm(as_payer, listing)
    warm(as_payer, detail)
    job = payment.job
    job.status = JobStatus.COMPLETED
    job.save()
    assert fresh(as_payer, listing)[0]["job"]["status"] == "completed"
    assert fresh(as_payer, detail)["job"]["status"] == "completed"
    warm(as_payer, listing)
    recipient = payment.recipient
    recipient.first_name = "Renamed"
    recipient.save()
    assert fresh(as_payer, listing)[0]["recipient"]["first_name"] == "Renamed"


def test_private_entries_are_never_served_to_another_user():
    payment = PaymentFactory()
    as_payer = auth_client(payment.payer)
    warm(as_payer, "/api/v1/payments/")
    warm(as_payer, f"/api/v1/users/{payment.payer_id}/payments/")
    warm(as_payer, f"/api/v1/payments/{payment.pk}/")
    stranger = auth_client(ClientUserFactory())
    response = stranger.get("/api/v1/payments/")
    assert response["X-Cache"] == "MISS" and response.json()["data"] == []
    assert stranger.get(f"/api/v1/users/{payment.payer_id}/payments/").status_code == 404
    assert stranger.get(f"/api/v1/payments/{payment.pk}/").status_code == 404


def test_losing_staff_retires_cached_answers():
    payment = PaymentFactory()
    staff = StaffUserFactory()
    as_staff = auth_client(staff)
    detail = f"/api/v1/payments/{payment.pk}/"
    warm(as_staff, detail)
    staff.is_staff = False
    staff.save()
    assert as_staff.get(detail).status_code == 404
