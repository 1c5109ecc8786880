"""What only PostgreSQL can prove: the admin and the API writing the same rows at
the same moment keep every marketplace rule.

Each thread makes a real request through the whole Django stack (the admin's
views and forms with a logged-in staff session, or the API with a token), on its
own database connection; ``run_together`` releases them at once. Each race runs
once per ``HEAD_STARTS`` on fresh rows, one side starting that much later, so that
the order varies (released at the same instant, the API's request reaches the
job's lock first nearly every time: an admin POST does more before it). Nothing
is asserted about time. Whatever the order, the loser of a race gets a form
error, an error message or a 409 (every status is asserted: never a 5xx), and the
rows end up within the rules:

- ``accepted_count`` <= ``workers_needed``, equal to the hired rows, the status
  true to them (open means there is room), nothing pending or accepted on a
  cancelled job, ``applications_count`` equal to the rows;
- the terms a worker was accepted on are the job's terms at the end (a witness
  reads them inside each acceptance's transaction, under the job's lock);
- at most one live payment per job and worker.

A thread's own failure (an exception the test client re-raises, as it does for
a 500 in the admin) fails the test in ``run_together``."""
import html
import re
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Count
from django.db.models.signals import post_save
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs import services as job_services
from jobs.models import Application, ApplicationStatus, Job, JobStatus
from jobs.services import FROZEN_TERMS
from payments.models import LIVE_STATUSES, Payment, PaymentStatus
from ratings.models import Review
from ratings.services import review_create
from tests.accounts.factories import StaffUserFactory, WorkerUserFactory
from tests.admin.pages import job_form
from tests.concurrency import run_together
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, JobFactory
from tests.payments.factories import PaymentFactory, hire
from tests.ratings.factories import completed_job

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Seconds one side of a race (the API's, unless said) waits after the barrier; a round each.
HEAD_STARTS = (0, 0.02, 0.05, 0.1, 0.2, 0.4)
HIRED = (ApplicationStatus.ACCEPTED, ApplicationStatus.HIRE_CANCELLED)


@pytest.fixture
def admin_session():
    """A new logged-in admin browser per call (a test client is not shared between threads)."""
    staff = StaffUserFactory()

    def new():
        browser = Client()
        browser.force_login(staff)
        return browser

    return new


@pytest.fixture
def terms_at_acceptance():
    """application id -> the job's frozen terms as the acceptance saw them, read in
    the accepting transaction while it holds the job's lock."""
    seen: dict[int, dict] = {}
    lock = threading.Lock()

    def witness(sender, instance, **kwargs):
        if instance.status == ApplicationStatus.ACCEPTED:
            terms = Job.objects.filter(pk=instance.job_id).values(*FROZEN_TERMS).get()
            with lock:
                seen[instance.pk] = terms

    post_save.connect(witness, sender=Application, dispatch_uid="terms_at_acceptance")
    yield seen
    post_save.disconnect(sender=Application, dispatch_uid="terms_at_acceptance")


def after(delay: float, call):
    """``call``, started ``delay`` seconds after the barrier lets it go."""

    def late():
        time.sleep(delay)
        return call()

    return late


def form_errors(response) -> list[str]:
    """The error texts of an admin form page (parsed from the HTML: a test client's
    ``context`` is collected through a global signal, mixed up between threads)."""
    lists = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", item)).strip() for item in lists]


def admin_outcome(response, *refusals: str) -> str:
    """``saved`` (the redirect after a save) or ``refused`` (the form again, with an
    error naming one of ``refusals``); anything else fails."""
    if response.status_code == 302:
        return "saved"
    assert response.status_code == 200, response.status_code
    errors = form_errors(response)
    assert any(refusal in error for error in errors for refusal in refusals), errors
    return "refused"


def assert_job_rules(job_id: int, terms_at_acceptance: dict | None = None) -> Job:
    job = Job.objects.get(pk=job_id)
    rows = dict(Application.objects.filter(job_id=job_id).values_list("status").annotate(n=Count("pk")))
    hired = sum(rows.get(status, 0) for status in HIRED)
    assert job.accepted_count == hired <= job.workers_needed, (job.accepted_count, rows, job.workers_needed)
    assert job.applications_count == sum(rows.values()), (job.applications_count, rows)
    if job.status == JobStatus.OPEN:
        assert job.accepted_count < job.workers_needed
    if job.status == JobStatus.FILLED:
        assert job.accepted_count == job.workers_needed
    if job.status == JobStatus.CANCELLED:
        assert not rows.get(ApplicationStatus.PENDING) and not rows.get(ApplicationStatus.ACCEPTED), rows
    else:
        assert not rows.get(ApplicationStatus.CANCELLED) and not rows.get(ApplicationStatus.HIRE_CANCELLED), rows
    if terms_at_acceptance is not None:
        final = {name: getattr(job, name) for name in FROZEN_TERMS}
        for pk in Application.objects.filter(job_id=job_id, status__in=HIRED).values_list("pk", flat=True):
            assert terms_at_acceptance[pk] == final, (pk, terms_at_acceptance[pk], final)
    return job


def new_job(**fields) -> Job:
    start = (timezone.now() + timedelta(days=2)).replace(microsecond=0)  # what the form's fields can say
    return JobFactory(start_at=start, end_at=start + timedelta(hours=8), **fields)


def accept_url(application) -> str:
    return f"/api/v1/applications/{application.pk}/accept/"


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


# --- jobs ------------------------------------------------------------------------------

def test_admin_lowers_workers_needed_while_the_api_accepts_the_last_workers(admin_session, terms_at_acceptance):
    """3 needed, 1 accepted; the admin lowers it to 2 while the client accepts two
    more. Admin first, or after one accept (down to the count: filled): the other
    accept is a 409. Both accepts first: the admin's form says 2 is too low."""
    def one_round(head_start):
        job = new_job(workers_needed=3)
        job_services.application_accept(application=ApplicationFactory(job=job), by=job.client)
        job.refresh_from_db()
        first, second = ApplicationFactory(job=job), ApplicationFactory(job=job)
        Job.objects.filter(pk=job.pk).update(applications_count=3)
        admin, owner_a, owner_b = admin_session(), auth_client(job.client), auth_client(job.client)
        url = reverse("admin:jobs_job_change", args=[job.pk])

        edit, accept_a, accept_b = run_together(
            lambda: admin.post(url, job_form(job, workers_needed=2)),
            after(head_start, lambda: owner_a.post(accept_url(first))),
            after(head_start, lambda: owner_b.post(accept_url(second))),
        )

        edited = admin_outcome(edit, "Must be at least the")
        accepts = sorted(r.status_code for r in (accept_a, accept_b))
        job = assert_job_rules(job.pk, terms_at_acceptance)
        if edited == "saved":
            assert job.workers_needed == 2 and accepts == [200, 409]
            assert (job.accepted_count, job.status) == (2, JobStatus.FILLED)
        else:
            assert job.workers_needed == 3 and accepts == [200, 200]
            assert (job.accepted_count, job.status) == (3, JobStatus.FILLED)
        return edited, *accepts

    outcomes = {one_round(head_start) for head_start in HEAD_STARTS}
    assert outcomes <= {("saved", 200, 409), ("refused", 200, 200)}, outcomes


def test_two_admins_and_the_client_change_terms_while_the_first_worker_is_accepted(
    admin_session, terms_at_acceptance
):
    """Rate by one admin, city by another, end time by the client's PATCH, and the
    client accepting the first worker, all at once. Every change that lands before
    the acceptance stands; every one after it is refused (a form error, a 409);
    the accepted worker's terms are the job's terms at the end."""
    frozen = "A worker is already accepted on these terms"

    def one_round(head_start):
        job = new_job(workers_needed=2)
        applicant = ApplicationFactory(job=job)
        Job.objects.filter(pk=job.pk).update(applications_count=1)
        admin_a, admin_b, owner, accepting = admin_session(), admin_session(), auth_client(job.client), auth_client(job.client)
        url = reverse("admin:jobs_job_change", args=[job.pk])
        later_end = (job.end_at + timedelta(hours=1)).isoformat()

        rate, city, patch, accept = run_together(
            lambda: admin_a.post(url, job_form(job, rate="31.00")),
            lambda: admin_b.post(url, job_form(job, city="Hamburg")),
            lambda: owner.patch(f"/api/v1/jobs/{job.pk}/", {"end_at": later_end}, format="json"),
            after(head_start, lambda: accepting.post(accept_url(applicant))),
        )

        assert accept.status_code == 200, accept.content
        assert patch.status_code in (200, 409), patch.content
        if patch.status_code == 409:
            assert patch.json()["details"]["frozen"] == ["end_at"]
        results = (admin_outcome(rate, frozen), admin_outcome(city, frozen), patch.status_code)
        job = assert_job_rules(job.pk, terms_at_acceptance)
        assert applicant.pk in terms_at_acceptance
        # What the job says came from a writer whose change was saved.
        assert job.rate == Decimal("20.00") or results[0] == "saved"
        assert job.city == "Berlin" or results[1] == "saved"
        assert job.end_at.isoformat() != later_end or patch.status_code == 200

    # Which writers get in before the acceptance varies from round to round.
    for head_start in HEAD_STARTS:
        one_round(head_start)


def test_admin_cancels_while_the_api_accepts_and_a_worker_applies(admin_session):
    """Cancel (an admin action) against an accept and an apply: whichever order,
    the job ends cancelled with nothing pending or accepted on it, a hire made
    before the cancel is ``hire_cancelled`` (still counted), an accept or apply
    after it is a 409; and the worker's and the client's application lists, read
    before the race (cached) and after it, show the rows as they are."""
    def one_round(head_start):
        job = new_job(workers_needed=2)
        applicant = ApplicationFactory(job=job)
        Job.objects.filter(pk=job.pk).update(applications_count=1)
        newcomer = WorkerUserFactory()
        owner, worker_api, newcomer_api = auth_client(job.client), auth_client(applicant.worker), auth_client(newcomer)
        # Warm the cached lists that the cancel must retire.
        assert worker_api.get("/api/v1/applications/").status_code == 200
        assert owner.get(f"/api/v1/jobs/{job.pk}/applications/").status_code == 200
        admin = admin_session()

        cancel, accept, apply = run_together(
            lambda: admin.post(changelist(Job), {"action": "cancel_jobs", "_selected_action": [job.pk]}),
            after(head_start, lambda: auth_client(job.client).post(accept_url(applicant))),
            after(head_start, lambda: newcomer_api.post(f"/api/v1/jobs/{job.pk}/apply/", {"cover_note": "me"}, format="json")),
        )

        assert cancel.status_code == 302
        assert accept.status_code in (200, 409) and apply.status_code in (201, 409), (accept.content, apply.content)
        job = assert_job_rules(job.pk)
        assert job.status == JobStatus.CANCELLED
        applicant.refresh_from_db()
        expected = {200: ApplicationStatus.HIRE_CANCELLED, 409: ApplicationStatus.CANCELLED}[accept.status_code]
        assert applicant.status == expected
        mine = worker_api.get("/api/v1/applications/").json()["data"]
        assert [row["status"] for row in mine] == [expected]
        listed = owner.get(f"/api/v1/jobs/{job.pk}/applications/").json()["data"]
        assert {row["id"]: row["status"] for row in listed} == dict(
            Application.objects.filter(job=job).values_list("pk", "status")
        )

    for head_start in HEAD_STARTS:
        one_round(head_start)


def test_admin_and_api_accept_into_the_last_slot_while_an_admin_deletes_a_pending_application(admin_session):
    """The admin's accept action, the API's accept and the admin deleting another
    (pending) application, on a job with one slot: one hire, the counters equal
    to the rows (the delete recounts under the job's lock)."""
    def one_round(head_start):
        job = new_job(workers_needed=1)
        by_admin, by_api, spam = (ApplicationFactory(job=job) for _ in range(3))
        Job.objects.filter(pk=job.pk).update(applications_count=3)
        admin_a, admin_b = admin_session(), admin_session()

        action, accept, delete = run_together(
            # Here the admin's action is the quicker one: it is the one that waits.
            after(head_start, lambda: admin_a.post(
                changelist(Application), {"action": "accept_applications", "_selected_action": [by_admin.pk]}
            )),
            lambda: auth_client(job.client).post(accept_url(by_api)),
            lambda: admin_b.post(reverse("admin:jobs_application_delete", args=[spam.pk]), {"post": "yes"}),
        )

        assert (action.status_code, delete.status_code) == (302, 302)
        assert accept.status_code in (200, 409)
        job = assert_job_rules(job.pk)
        assert (job.accepted_count, job.status, job.applications_count) == (1, JobStatus.FILLED, 2)
        winner = Application.objects.get(job=job, status=ApplicationStatus.ACCEPTED)
        assert (winner == by_api) == (accept.status_code == 200)

    for head_start in HEAD_STARTS:
        one_round(head_start)


# --- payments --------------------------------------------------------------------------

def test_admin_refunds_while_the_api_pays_the_same_job_and_worker_again(admin_session):
    """The admin cannot add a payment (tests/admin/test_admin_rules.py); its money
    write is the refund. Refunding the live payment while the client pays the same
    job and worker again under two other Idempotency-Keys: at most one live payment
    at any time (one of the new ones only if the refund came first), every loser a
    409 naming the live payment."""
    def one_round(head_start):
        job = hire()
        worker = job.applications.get().worker
        paid = PaymentFactory(job=job, payer=job.client, recipient=worker, status=PaymentStatus.SUCCEEDED)
        body = {"job": job.pk, "recipient": worker.pk, "amount": "40.00", "currency": "EUR"}
        payer_a, payer_b, admin = auth_client(job.client), auth_client(job.client), admin_session()

        refund, again_a, again_b = run_together(
            lambda: admin.post(changelist(Payment), {"action": "refund_payments", "_selected_action": [paid.pk]}),
            after(head_start, lambda: payer_a.post("/api/v1/payments/", body, format="json", HTTP_IDEMPOTENCY_KEY="again-a")),
            after(head_start, lambda: payer_b.post("/api/v1/payments/", body, format="json", HTTP_IDEMPOTENCY_KEY="again-b")),
        )

        assert refund.status_code == 302
        paid.refresh_from_db()
        assert paid.status == PaymentStatus.REFUNDED
        statuses = sorted(r.status_code for r in (again_a, again_b))
        assert statuses in ([201, 409], [409, 409]), statuses
        live = list(Payment.objects.filter(job=job, recipient=worker, status__in=LIVE_STATUSES))
        assert len(live) == statuses.count(201)
        for response in (again_a, again_b):
            if response.status_code == 409:
                named = response.json()["details"]["payment"]["id"]
                assert named in {paid.pk, *(p.pk for p in live)}
            else:
                assert response.json()["data"]["id"] == live[0].pk

    for head_start in HEAD_STARTS:
        one_round(head_start)


# --- reviews ---------------------------------------------------------------------------

def test_admin_and_api_review_the_same_worker_for_the_same_job_at_once(admin_session):
    """One review per job and direction whichever road writes it: the loser gets a
    form error or a 409, and the worker's rating counts the one row."""
    def one_round(head_start):
        job = completed_job()
        worker = job.applications.get().worker
        admin = admin_session()

        added, posted = run_together(
            lambda: admin.post(reverse("admin:ratings_review_add"), {
                "job": job.pk, "reviewer": job.client.pk, "reviewed": worker.pk, "rating": 2, "comment": "",
            }),
            after(head_start, lambda: auth_client(job.client).post(
                "/api/v1/reviews/", {"job": job.pk, "reviewed": worker.pk, "rating": 5}, format="json"
            )),
        )

        # The loser is the form's own uniqueness check or the service's 409.
        outcome = admin_outcome(added, "already reviewed", "already exists")
        assert (outcome, posted.status_code) in {("saved", 409), ("refused", 201)}, (outcome, posted.content)
        review = Review.objects.get(job=job)
        worker.refresh_from_db()
        assert (worker.rating_sum, worker.rating_count) == (review.rating, 1)

    for head_start in HEAD_STARTS:
        one_round(head_start)


def test_admin_edits_a_rating_while_the_api_adds_another_review_of_the_same_worker(admin_session):
    """The admin's edit recounts under the reviewed user's lock, the API's review
    adds under the same lock: the counters end equal to the rows."""
    def one_round(head_start):
        first = completed_job()
        worker = first.applications.get().worker
        review = review_create(reviewer=first.client, job=first.pk, reviewed=worker.pk, rating=5)
        second = completed_job(worker=worker)
        admin = admin_session()

        edited, posted = run_together(
            lambda: admin.post(reverse("admin:ratings_review_change", args=[review.pk]), {"rating": 1, "comment": "x"}),
            after(head_start, lambda: auth_client(second.client).post(
                "/api/v1/reviews/", {"job": second.pk, "reviewed": worker.pk, "rating": 4}, format="json"
            )),
        )

        assert (edited.status_code, posted.status_code) == (302, 201)
        worker.refresh_from_db()
        ratings = list(Review.objects.filter(reviewed=worker).values_list("rating", flat=True))
        assert sorted(ratings) == [1, 4]
        assert (worker.rating_sum, worker.rating_count) == (sum(ratings), 2)

    for head_start in HEAD_STARTS:
        one_round(head_start)

