"""The marketplace rules of the jobs app over HTTP (issue "rules that protect money
and reputation"): for each rule the refusal (its status and a message a client can
show) and the allowed path. Time is moved with time-machine, never slept."""
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from jobs.models import ApplicationStatus, Job, JobStatus
from jobs.services import EARLY_START_WINDOW, POSTING_CLOCK_SKEW
from tests.accounts.factories import ClientUserFactory, StaffUserFactory, WorkerUserFactory
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, CategoryFactory, JobFactory

pytestmark = pytest.mark.django_db


def ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()["data"]


def refused(response, status, field=None):
    """The envelope of a refusal; its message is a sentence, never empty."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"] == {400: "validation_error", 409: "conflict"}[status]
    assert len(body["message"]) > 10
    if field is not None:
        assert field in body["details"], body
    return body


def body_starting(start, **overrides):
    body = {
        "title": "Bar shift", "category": CategoryFactory().pk, "city": "Berlin", "rate": "25.00",
        "currency": "EUR", "workers_needed": 1,
        "start_at": start.isoformat(), "end_at": (start + timedelta(hours=8)).isoformat(),
    }
    return {**body, **overrides}


def accepted_job(**fields):
    """A job of its own client with one worker accepted through the API."""
    job = JobFactory(**fields)
    app = ApplicationFactory(job=job)
    ok(auth_client(job.client).post(f"/api/v1/applications/{app.pk}/accept/"))
    job.refresh_from_db()
    app.refresh_from_db()
    return job, app


# --- 3. time is real: a job starts in the future --------------------------------

def test_posting_a_job_that_starts_in_the_past_is_400(as_client):
    now = timezone.now()
    result = refused(as_client.post("/api/v1/jobs/", body_starting(now - timedelta(days=1)), format="json"),
                     400, "start_at")
    assert "future" in result["message"]
    # Beyond the clock-skew allowance: still refused.
    late = now - POSTING_CLOCK_SKEW - timedelta(minutes=1)
    refused(as_client.post("/api/v1/jobs/", body_starting(late), format="json"), 400, "start_at")
    assert Job.objects.count() == 0


def test_posting_a_job_that_starts_in_the_future_or_within_the_skew_is_201(as_client):
    now = timezone.now()
    ok(as_client.post("/api/v1/jobs/", body_starting(now + timedelta(minutes=2)), format="json"), 201)
    skewed = now - POSTING_CLOCK_SKEW + timedelta(minutes=1)  # a client clock a little behind
    ok(as_client.post("/api/v1/jobs/", body_starting(skewed), format="json"), 201)
    assert Job.objects.count() == 2


def test_end_before_start_is_400(as_client):
    start = timezone.now() + timedelta(days=1)
    body = body_starting(start, end_at=(start - timedelta(hours=1)).isoformat())
    refused(as_client.post("/api/v1/jobs/", body, format="json"), 400, "end_at")


def test_moving_an_open_job_into_the_past_is_400_into_the_future_200(client_user):
    job = JobFactory(client=client_user)
    owner = auth_client(client_user)
    past = timezone.now() - timedelta(hours=2)
    refused(owner.patch(f"/api/v1/jobs/{job.pk}/", {"start_at": past.isoformat()}, format="json"), 400, "start_at")
    later = job.start_at + timedelta(days=1)
    body = {"start_at": later.isoformat(), "end_at": (later + timedelta(hours=4)).isoformat()}
    assert ok(owner.patch(f"/api/v1/jobs/{job.pk}/", body, format="json"))["start_at"].startswith(
        later.strftime("%Y-%m-%dT%H:%M")
    )


def test_start_before_the_early_window_is_409_within_it_200():
    job, _ = accepted_job()
    owner = auth_client(job.client)
    opens = job.start_at - EARLY_START_WINDOW
    with time_machine.travel(opens - timedelta(minutes=1), tick=False):
        result = refused(owner.post(f"/api/v1/jobs/{job.pk}/start/"), 409)
        assert "Too early" in result["message"] and "30 minutes" in result["message"]
        assert result["details"]["can_start_at"] == opens.isoformat()
    job.refresh_from_db()
    assert job.status == JobStatus.FILLED
    with time_machine.travel(opens, tick=False):
        assert ok(owner.post(f"/api/v1/jobs/{job.pk}/start/"))["status"] == "in_progress"


def test_complete_before_the_start_is_409_after_it_200():
    job, _ = accepted_job()
    owner = auth_client(job.client)
    with time_machine.travel(job.start_at - timedelta(minutes=10), tick=False):
        ok(owner.post(f"/api/v1/jobs/{job.pk}/start/"))
        result = refused(owner.post(f"/api/v1/jobs/{job.pk}/complete/"), 409)
        assert "not started" in result["message"]
    with time_machine.travel(job.start_at + timedelta(seconds=1), tick=False):
        assert ok(owner.post(f"/api/v1/jobs/{job.pk}/complete/"))["status"] == "completed"


def test_a_shift_months_ahead_cannot_be_started_completed_and_reviewed_at_once():
    """The reputation mint of the issue: accept, start, complete and review a shift
    scheduled months ahead, all at once."""
    job, app = accepted_job(start_at=timezone.now() + timedelta(days=90))
    owner = auth_client(job.client)
    refused(owner.post(f"/api/v1/jobs/{job.pk}/start/"), 409)
    refused(owner.post(f"/api/v1/jobs/{job.pk}/complete/"), 409)
    review = {"job": job.pk, "reviewed": app.worker_id, "rating": 5, "comment": "great"}
    refused(owner.post("/api/v1/reviews/", review, format="json"), 400, "job")


# --- 2. terms are frozen once someone is accepted --------------------------------

@pytest.mark.parametrize(
    "change",
    [
        {"rate": "99.00"},
        {"currency": "USD"},
        {"city": "Paris"},
        "start_at",
        "end_at",
    ],
    ids=["rate", "currency", "city", "start_at", "end_at"],
)
def test_changing_a_term_after_an_acceptance_is_409(change):
    job, _ = accepted_job(workers_needed=2)  # still open: one slot left
    if change == "start_at":
        change = {"start_at": (job.start_at + timedelta(hours=1)).isoformat()}
    elif change == "end_at":
        change = {"end_at": (job.end_at + timedelta(hours=1)).isoformat()}
    result = refused(auth_client(job.client).patch(f"/api/v1/jobs/{job.pk}/", change, format="json"), 409)
    assert result["details"] == {"frozen": list(change)}
    before = (job.rate, job.currency, job.city, job.start_at, job.end_at)
    job.refresh_from_db()
    assert (job.rate, job.currency, job.city, job.start_at, job.end_at) == before


def test_terms_change_freely_before_any_acceptance(client_user):
    job = JobFactory(client=client_user)
    ApplicationFactory(job=job)  # pending only
    data = ok(auth_client(client_user).patch(
        f"/api/v1/jobs/{job.pk}/", {"rate": "30.00", "currency": "USD", "city": "Paris"}, format="json"
    ))
    assert (data["rate"], data["currency"], data["city"]) == ("30.00", "USD", "Paris")


@pytest.mark.parametrize("workers_needed", [1, 2])
def test_title_description_and_unchanged_terms_may_be_sent_after_an_acceptance(workers_needed):
    job, _ = accepted_job(workers_needed=workers_needed)  # open (2) or filled (1)
    body = {"title": "Bar shift (back door)", "description": "Use the back door.", "rate": f"{job.rate:.2f}",
            "city": job.city, "start_at": job.start_at.isoformat()}
    data = ok(auth_client(job.client).patch(f"/api/v1/jobs/{job.pk}/", body, format="json"))
    assert (data["title"], data["description"]) == ("Bar shift (back door)", "Use the back door.")
    assert data["status"] == ("filled" if workers_needed == 1 else "open")


def test_workers_needed_never_drops_below_the_accepted_count_and_down_to_it_fills_the_job():
    job, _ = accepted_job(workers_needed=3)
    other = ApplicationFactory(job=job)
    owner = auth_client(job.client)
    ok(owner.post(f"/api/v1/applications/{other.pk}/accept/"))  # 2 of 3
    refused(owner.patch(f"/api/v1/jobs/{job.pk}/", {"workers_needed": 1}, format="json"), 400, "workers_needed")
    job.refresh_from_db()
    assert (job.workers_needed, job.status) == (3, JobStatus.OPEN)
    data = ok(owner.patch(f"/api/v1/jobs/{job.pk}/", {"workers_needed": 2}, format="json"))
    assert (data["workers_needed"], data["accepted_count"], data["status"]) == (2, 2, "filled")
    assert ok(owner.patch(f"/api/v1/jobs/{job.pk}/", {"workers_needed": 4}, format="json"))["status"] == "open"


def test_a_filled_job_given_another_slot_opens_again():
    job, _ = accepted_job(workers_needed=1)
    assert job.status == JobStatus.FILLED
    data = ok(auth_client(job.client).patch(f"/api/v1/jobs/{job.pk}/", {"workers_needed": 2}, format="json"))
    assert (data["workers_needed"], data["accepted_count"], data["status"]) == (2, 1, "open")


# --- 4. cancelling ends what hangs on the job ------------------------------------

def test_cancel_closes_pending_and_marks_accepted_applications():
    job = JobFactory(workers_needed=3)
    owner = auth_client(job.client)
    hired, waiting, turned_down = (ApplicationFactory(job=job) for _ in range(3))
    ok(owner.post(f"/api/v1/applications/{hired.pk}/accept/"))
    ok(owner.post(f"/api/v1/applications/{turned_down.pk}/reject/"))
    assert owner.delete(f"/api/v1/jobs/{job.pk}/").status_code == 204

    statuses = {row["id"]: row["status"] for row in ok(owner.get(f"/api/v1/jobs/{job.pk}/applications/"))}
    assert statuses == {hired.pk: "hire_cancelled", waiting.pk: "cancelled", turned_down.pk: "rejected"}
    # Each worker sees their own application's new status.
    for app, status in ((hired, "hire_cancelled"), (waiting, "cancelled")):
        mine = ok(auth_client(app.worker).get("/api/v1/applications/"))
        assert [(row["id"], row["status"], row["job"]["status"]) for row in mine] == [(app.pk, status, "cancelled")]
    # And they can filter on it.
    assert [row["id"] for row in ok(owner.get("/api/v1/applications/?status=cancelled"))] == [waiting.pk]


def test_a_closed_application_cannot_be_accepted_withdrawn_or_rejected():
    job = JobFactory()
    app = ApplicationFactory(job=job)
    owner, worker = auth_client(job.client), auth_client(app.worker)
    assert owner.delete(f"/api/v1/jobs/{job.pk}/").status_code == 204
    for caller, action in ((owner, "accept"), (owner, "reject"), (worker, "withdraw")):
        refused(caller.post(f"/api/v1/applications/{app.pk}/{action}/"), 409)
    app.refresh_from_db()
    assert app.status == ApplicationStatus.CANCELLED


def test_an_accepted_application_is_not_withdrawn_or_rejected_the_job_is_cancelled():
    """The rule after acceptance: neither side undoes it alone (409); the client's
    way out is cancelling the job, which the worker then sees."""
    job, app = accepted_job()
    owner, worker = auth_client(job.client), auth_client(app.worker)
    result = refused(worker.post(f"/api/v1/applications/{app.pk}/withdraw/"), 409)
    assert "cancelling the job" in result["message"]
    refused(owner.post(f"/api/v1/applications/{app.pk}/reject/"), 409)
    app.refresh_from_db()
    assert app.status == ApplicationStatus.ACCEPTED
    assert owner.delete(f"/api/v1/jobs/{job.pk}/").status_code == 204
    assert ok(worker.get("/api/v1/applications/"))[0]["status"] == "hire_cancelled"


def test_a_pending_application_may_still_be_withdrawn_and_rejected():
    job = JobFactory()
    a, b = ApplicationFactory(job=job), ApplicationFactory(job=job, worker=WorkerUserFactory())
    assert ok(auth_client(a.worker).post(f"/api/v1/applications/{a.pk}/withdraw/"))["status"] == "withdrawn"
    assert ok(auth_client(job.client).post(f"/api/v1/applications/{b.pk}/reject/"))["status"] == "rejected"


# --- the contract states the refusals ----------------------------------------------

def test_the_schema_states_each_rule_and_its_status(anon):
    schema = anon.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    ops = schema["paths"]

    def says(path, method, code, *phrases):
        text = ops[path][method]["responses"][code]["description"]
        for phrase in phrases:
            assert phrase in text, (path, method, code, text)

    says("/api/v1/jobs/", "post", "400", "`start_at` in the past")
    says("/api/v1/jobs/{id}/", "patch", "409", "frozen terms", "`details.frozen`")
    says("/api/v1/jobs/{id}/", "patch", "400", "`workers_needed` below the number of accepted workers")
    says("/api/v1/jobs/{id}/", "delete", "204", "`cancelled`", "`hire_cancelled`")
    says("/api/v1/jobs/{id}/start/", "post", "409", "30 minutes before its `start_at`")
    says("/api/v1/jobs/{id}/complete/", "post", "409", "`start_at` has not come yet")
    says("/api/v1/applications/{id}/withdraw/", "post", "409", "accepted one stands")
    says("/api/v1/applications/{id}/reject/", "post", "409", "accepted one stands")
    says("/api/v1/payments/", "post", "409", "not completed", "`details.payment`")
    says("/api/v1/payments/", "post", "400", "rate x its scheduled hours", "not the job's")


# --- the authorization matrix extends to the new refusals ----------------------------
# Authorization comes first: a caller who may not act gets 401/403/404 whatever the
# rule says; only the one who may act meets the rule's 409 (and nothing changes).

RULE_MATRIX = [
    # (method, path template, body, {caller: status}); the job is filled (one worker accepted), two days ahead
    ("patch", "/api/v1/jobs/{job}/", {"rate": "99.00"},
     {"anon": 401, "other_client": 403, "other_worker": 403, "hired": 403, "staff": 403, "owner": 409}),
    ("post", "/api/v1/jobs/{job}/start/", None,
     {"anon": 401, "other_client": 403, "hired": 403, "staff": 403, "owner": 409}),
    ("post", "/api/v1/jobs/{job}/complete/", None,
     {"anon": 401, "other_client": 403, "hired": 403, "staff": 403, "owner": 409}),
    ("post", "/api/v1/applications/{application}/withdraw/", None,
     {"anon": 401, "other_worker": 404, "owner": 404, "staff": 404, "hired": 409}),
    ("post", "/api/v1/applications/{application}/reject/", None,
     {"anon": 401, "other_client": 404, "hired": 404, "staff": 404, "owner": 409}),
    ("post", "/api/v1/payments/", "pay",
     {"anon": 401, "hired": 403, "other_worker": 403, "other_client": 400, "owner": 409}),
]


@pytest.mark.parametrize("method,template,body,expected", RULE_MATRIX, ids=[f"{m} {t}" for m, t, _, _ in RULE_MATRIX])
def test_authorization_matrix_of_the_rules(method, template, body, expected):
    job, application = accepted_job()
    callers = {
        "owner": auth_client(job.client), "hired": auth_client(application.worker),
        "other_client": auth_client(ClientUserFactory()), "other_worker": auth_client(WorkerUserFactory()),
        "staff": auth_client(StaffUserFactory()), "anon": APIClient(),
    }
    if body == "pay":
        body = {"job": job.pk, "recipient": application.worker_id, "amount": "10.00", "currency": "EUR"}
    path = template.format(job=job.pk, application=application.pk)
    before = (job.rate, job.status, application.status)
    for who, status in expected.items():
        kwargs = {"format": "json", "HTTP_IDEMPOTENCY_KEY": f"k-{who}"} if body is not None else {}
        response = getattr(callers[who], method)(path, body, **kwargs) if body is not None else (
            getattr(callers[who], method)(path))
        assert response.status_code == status, (who, response.content)
        job.refresh_from_db()
        application.refresh_from_db()
        assert (job.rate, job.status, application.status) == before, who
