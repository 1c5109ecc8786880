"""The seeded demo data satisfies every marketplace rule of the services (jobs,
payments, ratings), checked row by row with the services' own constants, and the
demo accounts can walk on through the API from where the seed left them."""
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils.dateparse import parse_datetime

from accounts.models import User
from jobs.models import Application, ApplicationStatus, Job, JobStatus
from jobs.services import EARLY_START_WINDOW
from payments.models import LIVE_STATUSES, Payment
from ratings.models import Review
from tests.conftest import auth_client
from tests.tools.test_seed import BASE_TIME, N_JOBS, run_seed
from tools.management.commands import seed as seed_module

pytestmark = pytest.mark.django_db

HIRED = {ApplicationStatus.ACCEPTED, ApplicationStatus.HIRE_CANCELLED}
CLOSED_BY_CANCEL = {ApplicationStatus.CANCELLED, ApplicationStatus.HIRE_CANCELLED}


@pytest.fixture
def seeded(db):
    return run_seed("--jobs", str(N_JOBS))


def test_times_follow_the_lifecycle(seeded):
    now = parse_datetime(BASE_TIME)  # the seed's "now"
    for job in Job.objects.all():
        assert job.end_at > job.start_at, job.pk
        if job.status in (JobStatus.OPEN, JobStatus.FILLED, JobStatus.CANCELLED):
            assert job.start_at > now, (job.pk, job.status)  # posted to start in the future, still ahead
        elif job.status == JobStatus.IN_PROGRESS:
            assert job.start_at - EARLY_START_WINDOW <= now, job.pk  # started within the window or later
        else:
            assert job.start_at <= now and job.end_at <= now, job.pk  # completed after its start


def test_applications_follow_the_job(seeded):
    for job in Job.objects.prefetch_related("applications"):
        statuses = Counter(a.status for a in job.applications.all())
        hired = sum(statuses[s] for s in HIRED)
        assert job.accepted_count == hired <= job.workers_needed, job.pk
        if job.status == JobStatus.OPEN:
            assert hired < job.workers_needed, job.pk  # never open and full
        if job.status == JobStatus.CANCELLED:
            # Cancelling closed what hung on the job.
            assert statuses[ApplicationStatus.PENDING] == statuses[ApplicationStatus.ACCEPTED] == 0, job.pk
        else:
            assert not any(statuses[s] for s in CLOSED_BY_CANCEL), job.pk
    # Both closing statuses occur, so the rule is exercised by the data.
    present = set(Application.objects.values_list("status", flat=True))
    assert CLOSED_BY_CANCEL <= present


def test_payments_follow_the_work(seeded):
    accepted = set(Application.objects.filter(status=ApplicationStatus.ACCEPTED).values_list("job_id", "worker_id"))
    live = Counter()
    for payment in Payment.objects.select_related("job"):
        job = payment.job
        assert job.status == JobStatus.COMPLETED, payment.pk
        assert payment.payer_id == job.client_id, payment.pk
        assert (job.pk, payment.recipient_id) in accepted, payment.pk
        assert payment.currency == job.currency, payment.pk
        assert Decimal("0") < payment.amount <= job.worth_per_worker, payment.pk
        if payment.status in LIVE_STATUSES:
            live[job.pk, payment.recipient_id] += 1
    assert live and max(live.values()) == 1


def test_reviews_wait_for_completion_between_the_parties(seeded):
    accepted = set(Application.objects.filter(status=ApplicationStatus.ACCEPTED).values_list("job_id", "worker_id"))
    for review in Review.objects.select_related("job"):
        assert review.job.status == JobStatus.COMPLETED
        client = review.job.client_id
        worker = review.reviewed_id if review.reviewer_id == client else review.reviewer_id
        assert client in (review.reviewer_id, review.reviewed_id)
        assert (review.job_id, worker) in accepted


def test_the_demo_accounts_walk_on_through_the_api(seeded):
    """From the seeded state, the services accept what the README promises: the
    demo client pays the demo worker the shift's worth on the completed job (not a
    cent more), completes the job in progress, and edits only the wording of it."""
    client = User.objects.get(email=seed_module.DEMO_CLIENT_EMAIL)
    worker = User.objects.get(email=seed_module.DEMO_WORKER_EMAIL)
    as_client = auth_client(client)
    # The walkthrough's jobs are the demo client's first three (Planner._scenario_jobs).
    done, running, waiting = Job.objects.filter(client=client).order_by("pk")[:3]
    assert (done.status, running.status, waiting.status) == ("completed", "in_progress", "open")
    with time_machine.travel(parse_datetime(BASE_TIME) + timedelta(minutes=5)):
        walk_on(as_client, worker, done, running, waiting)


def walk_on(as_client, worker, done, running, waiting):
    body = {"job": done.pk, "recipient": worker.pk, "currency": done.currency}
    too_much = as_client.post("/api/v1/payments/", {**body, "amount": str(done.worth_per_worker + Decimal("0.01"))},
                              format="json", HTTP_IDEMPOTENCY_KEY="demo-1")
    assert too_much.status_code == 400, too_much.content
    paid = as_client.post("/api/v1/payments/", {**body, "amount": str(done.worth_per_worker)},
                          format="json", HTTP_IDEMPOTENCY_KEY="demo-2")
    assert paid.status_code == 201, paid.content

    assert as_client.patch(f"/api/v1/jobs/{running.pk}/", {"title": "x"}, format="json").status_code == 409
    assert as_client.post(f"/api/v1/jobs/{running.pk}/complete/").status_code == 200

    assert as_client.patch(f"/api/v1/jobs/{waiting.pk}/", {"rate": "30.00"}, format="json").status_code == 200
