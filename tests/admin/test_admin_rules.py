"""Admin writes obey the rules: the admin goes through the API's services (forms
and actions), money fields are read-only, a broken rule or a lost race is a form
error or an error message (never a 500), and API token keys are never shown in
full."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from zeal import zeal_ignore

from jobs import services as job_services
from jobs.models import Application, Job
from payments.models import Payment, PaymentStatus
from ratings.models import Review
from tests.accounts.factories import ClientUserFactory, StaffUserFactory, WorkerUserFactory
from tests.admin.pages import job_form
from tests.jobs.factories import ApplicationFactory, CategoryFactory, JobFactory
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db

# An action runs the service once per selected row, each with its row locks (see
# tests/admin/test_admin.py SERVICE_LOCKS).
SERVICE_LOCKS = [
    {"model": "jobs.Job", "field": "get()"},
    {"model": "jobs.Application", "field": "get()"},
    {"model": "payments.Payment", "field": "get()"},
]


@pytest.fixture
def admin_client(client, db):
    client.force_login(StaffUserFactory())
    return client


def action(admin_client, model, name, objs):
    with zeal_ignore(SERVICE_LOCKS):
        response = admin_client.post(
            reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"),
            {"action": name, "_selected_action": [obj.pk for obj in objs]},
            follow=True,
        )
    assert response.status_code == 200
    return [(m.level_tag, m.message) for m in response.context["messages"]]


def form_errors(response):
    assert response.status_code == 200, response.status_code  # the page again, not a redirect, not a 500
    form = response.context["adminform"].form
    assert form.errors
    return form.errors


# --- payments ----------------------------------------------------------------------

def test_payment_money_fields_are_read_only_and_payments_are_not_added_or_deleted(admin_client):
    payment = PaymentFactory(amount=Decimal("50.00"))
    url = reverse("admin:payments_payment_change", args=[payment.pk])
    html = admin_client.get(url).content.decode()
    for field in ("amount", "currency", "status"):
        assert f'name="{field}"' not in html, field
    admin_client.post(url, {"amount": "9999.00", "currency": "USD", "status": "succeeded"})
    payment.refresh_from_db()
    assert (payment.amount, payment.currency, payment.status) == (Decimal("50.00"), "EUR", "pending")
    assert admin_client.get(reverse("admin:payments_payment_add")).status_code == 403
    assert admin_client.get(reverse("admin:payments_payment_delete", args=[payment.pk])).status_code == 403


def test_refund_is_an_action_through_the_refund_service(admin_client):
    succeeded = PaymentFactory(status=PaymentStatus.SUCCEEDED)
    pending = PaymentFactory()
    messages = action(admin_client, Payment, "refund_payments", [succeeded, pending])
    assert ("success", "1 payment(s) refunded.") in messages
    assert ("error", f"{pending.reference}: Only a succeeded payment can be refunded; this one is pending.") in messages
    succeeded.refresh_from_db()
    pending.refresh_from_db()
    assert (succeeded.status, pending.status) == (PaymentStatus.REFUNDED, PaymentStatus.PENDING)


def test_a_refund_the_gateway_refuses_is_an_error_message(admin_client, settings):
    settings.PAYMENT_GATEWAY = "tests.payments.test_services.DecliningGateway"
    payment = PaymentFactory(status=PaymentStatus.SUCCEEDED)
    messages = action(admin_client, Payment, "refund_payments", [payment])
    assert messages == [("error", f"{payment.reference}: refund refused")]
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED


# --- jobs ----------------------------------------------------------------------------

def test_cancel_is_an_action_through_the_cancel_service(admin_client):
    open_job, started = JobFactory(), JobFactory(status="in_progress")
    pending = ApplicationFactory(job=open_job)
    messages = action(admin_client, Job, "cancel_jobs", [open_job, started])
    assert ("success", "1 job(s) cancelled.") in messages
    assert any(level == "error" and "Only an open or filled job can be cancelled" in text for level, text in messages)
    open_job.refresh_from_db()
    started.refresh_from_db()
    pending.refresh_from_db()
    assert (open_job.status, started.status, pending.status) == ("cancelled", "in_progress", "cancelled")


def test_adding_a_job_goes_through_the_create_service(admin_client):
    client = ClientUserFactory()
    start = timezone.now() + timedelta(days=1)
    job = JobFactory.build(client=client, category=CategoryFactory(), start_at=start, end_at=start + timedelta(hours=6))
    data = {**job_form(job), "client": client.pk}
    past = timezone.now() - timedelta(days=1)
    refused = admin_client.post(reverse("admin:jobs_job_add"), {
        **data, "start_at_0": past.strftime("%Y-%m-%d"), "start_at_1": past.strftime("%H:%M:%S"),
        "end_at_0": start.strftime("%Y-%m-%d"),
    })
    assert "start_at" in form_errors(refused)
    assert Job.objects.count() == 0
    assert admin_client.post(reverse("admin:jobs_job_add"), data).status_code == 302
    created = Job.objects.get()
    assert (created.client, created.status, created.rate) == (client, "open", job.rate)


def test_frozen_terms_are_a_form_error_and_the_wording_may_change(admin_client):
    job = JobFactory(workers_needed=2)
    job_services.application_accept(application=ApplicationFactory(job=job), by=job.client)
    job.refresh_from_db()
    url = reverse("admin:jobs_job_change", args=[job.pk])
    errors = form_errors(admin_client.post(url, job_form(job, rate="99.00", city="Paris")))
    assert "A worker is already accepted on these terms" in str(errors)
    job.refresh_from_db()
    assert (job.rate, job.city) == (Decimal("20.00"), "Berlin")
    assert admin_client.post(url, job_form(job, title="Renamed")).status_code == 302
    job.refresh_from_db()
    assert job.title == "Renamed"


def test_the_admin_keeps_a_job_payable_and_bounded(admin_client):
    """Only the API's serializer checked currency and head count: the admin saved a
    job in "xyz", which no payment could ever be made in (a payment is in the job's
    currency, one of the platform's), for 5,000 workers. The services check both."""
    job = JobFactory()
    url = reverse("admin:jobs_job_change", args=[job.pk])
    assert "currency" in form_errors(admin_client.post(url, job_form(job, currency="xyz")))
    assert "workers_needed" in form_errors(admin_client.post(url, job_form(job, workers_needed=5000)))
    job.refresh_from_db()
    assert (job.currency, job.workers_needed) == ("EUR", 1)
    assert admin_client.post(url, job_form(job, currency="USD", workers_needed=3)).status_code == 302
    job.refresh_from_db()
    assert (job.currency, job.workers_needed) == ("USD", 3)


def test_the_admin_keeps_workers_needed_at_or_above_the_hires_and_the_status_true(admin_client):
    job = JobFactory(workers_needed=3)
    for _ in range(2):
        job_services.application_accept(application=ApplicationFactory(job=job), by=job.client)
    job.refresh_from_db()
    url = reverse("admin:jobs_job_change", args=[job.pk])
    assert "workers_needed" in form_errors(admin_client.post(url, job_form(job, workers_needed=1)))
    job.refresh_from_db()
    assert (job.workers_needed, job.accepted_count, job.status) == (3, 2, "open")
    assert admin_client.post(url, job_form(job, workers_needed=2)).status_code == 302  # hiring ends
    job.refresh_from_db()
    assert (job.workers_needed, job.accepted_count, job.status) == (2, 2, "filled")


def test_a_race_lost_in_the_admin_is_a_form_error_not_a_500(admin_client):
    """The page was opened while there was room; another writer accepted the last
    worker before the save: the service re-reads under the job's lock and refuses."""
    job = JobFactory(workers_needed=2)
    url = reverse("admin:jobs_job_change", args=[job.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    # Meanwhile, through the API's service: one worker accepted.
    job_services.application_accept(application=ApplicationFactory(job=job), by=job.client)
    stale = Job.objects.get(pk=job.pk)
    stale.accepted_count = 0  # the form as it was rendered
    errors = form_errors(admin_client.post(url, job_form(stale, workers_needed=1, rate="30.00")))
    assert errors
    job.refresh_from_db()
    assert (job.workers_needed, job.rate, job.accepted_count) == (2, Decimal("20.00"), 1)


def test_a_job_is_cancelled_not_deleted(admin_client):
    job = JobFactory()
    url = reverse("admin:jobs_job_delete", args=[job.pk])
    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert 'value="delete_selected"' not in admin_client.get(reverse("admin:jobs_job_changelist")).content.decode()
    admin_client.post(reverse("admin:jobs_job_changelist"),
                      {"action": "delete_selected", "_selected_action": [job.pk], "post": "yes"})
    assert Job.objects.filter(pk=job.pk).exists()


def test_a_hire_is_not_deleted_and_a_paid_one_keeps_its_payment(admin_client):
    """Deleting a hire would undo an acceptance the services never undo (and
    leave a payment or review with no hire behind it): the delete page lists it as
    protected and deletes nothing; a pending application still goes (spam)."""
    payment = PaymentFactory()
    hired = payment.job.applications.get()
    url = reverse("admin:jobs_application_delete", args=[hired.pk])
    page = admin_client.get(url)
    assert page.status_code == 200 and "a hire stands" in page.content.decode()
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 200 and "a hire stands" in response.content.decode()
    payment.job.refresh_from_db()
    assert (payment.job.accepted_count, payment.job.applications.count()) == (1, 1)

    job = JobFactory(workers_needed=2)
    accepted = job_services.application_accept(application=ApplicationFactory(job=job), by=job.client)
    Job.objects.filter(pk=job.pk).update(applications_count=2)
    pending = ApplicationFactory(job=job)
    with zeal_ignore(SERVICE_LOCKS):
        response = admin_client.post(reverse("admin:jobs_application_changelist"), {
            "action": "delete_selected", "_selected_action": [accepted.pk, pending.pk], "post": "yes",
        })
    assert response.status_code == 200
    assert set(Application.objects.filter(job=job).values_list("pk", flat=True)) == {accepted.pk, pending.pk}
    assert admin_client.post(reverse("admin:jobs_application_delete", args=[pending.pk]), {"post": "yes"}).status_code == 302
    job.refresh_from_db()
    assert (job.applications_count, job.accepted_count, job.status) == (1, 1, "open")


def test_a_user_the_marketplace_counts_is_deactivated_not_deleted(admin_client):
    """Deleting a worker would cascade to their applications (a job's counters) and
    reviews (others' ratings): refused, nothing deleted. A user with none goes."""
    job = JobFactory(workers_needed=2)
    hired = job_services.application_accept(application=ApplicationFactory(job=job), by=job.client)
    url = reverse("admin:accounts_user_delete", args=[hired.worker_id])
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 200 and "deactivate the account instead" in response.content.decode()
    job.refresh_from_db()
    assert (job.accepted_count, Application.objects.filter(job=job).count()) == (1, 1)

    newcomer = WorkerUserFactory()
    assert admin_client.post(reverse("admin:accounts_user_delete", args=[newcomer.pk]), {"post": "yes"}).status_code == 302
    assert not type(newcomer).objects.filter(pk=newcomer.pk).exists()


def test_adding_an_application_goes_through_the_apply_service(admin_client):
    job = JobFactory(status="cancelled")
    response = admin_client.post(reverse("admin:jobs_application_add"),
                                 {"job": job.pk, "worker": WorkerUserFactory().pk, "cover_note": ""})
    assert "it takes no applications" in str(form_errors(response))
    assert Application.objects.count() == 0


# --- reviews --------------------------------------------------------------------------

def test_adding_a_review_goes_through_the_review_service(admin_client):
    job = JobFactory(status="in_progress")
    worker = WorkerUserFactory()
    Application.objects.create(job=job, worker=worker, status="accepted")
    response = admin_client.post(reverse("admin:ratings_review_add"), {
        "job": job.pk, "reviewer": job.client.pk, "reviewed": worker.pk, "rating": 5, "comment": "",
    })
    assert "Only a completed job can be reviewed." in str(form_errors(response))
    assert Review.objects.count() == 0


# --- tokens ---------------------------------------------------------------------------

def test_api_token_keys_are_never_shown_in_full(admin_client):
    user = ClientUserFactory()
    token = Token.objects.create(user=user)
    pages = [
        reverse("admin:accounts_apitoken_changelist"),
        reverse("admin:accounts_apitoken_change", args=[user.pk]),
        reverse("admin:accounts_apitoken_delete", args=[user.pk]),
    ]
    with zeal_ignore([{"model": "accounts.User", "field": "get()"}]):
        for url in pages:
            response = admin_client.get(url)
            assert response.status_code == 200, url
            assert token.key not in response.content.decode(), url
        listing = admin_client.get(pages[0]).content.decode()
    assert f"{token.key[:4]}…" in listing
    assert reverse("admin:accounts_apitoken_changelist").startswith("/admin/accounts/apitoken/")


@pytest.mark.django_db(transaction=True)
def test_a_token_deleted_in_the_admin_is_refused_on_the_next_request(client):
    """The admin's token pages work on the ApiToken proxy, whose deletes send their
    own signals: the cached token -> user entry goes too (accounts/cache.py)."""
    from tests.conftest import auth_client

    client.force_login(StaffUserFactory())
    user = ClientUserFactory()
    api = auth_client(user)
    for _ in range(3):
        assert api.get("/api/v1/users/me/").status_code == 200
    with zeal_ignore([{"model": "accounts.User", "field": "get()"}]):
        response = client.post(reverse("admin:accounts_apitoken_delete", args=[user.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Token.objects.filter(user=user).exists()
    assert api.get("/api/v1/users/me/").status_code == 401
