"""PostgreSQL proofs: row locks make concurrent accepts and applies safe.

Real threads, each with its own database connection, released together by a
barrier. On SQLite these are skipped (its writers are serialised anyway and
``select_for_update`` is a no-op there)."""
import threading
import time

import pytest
from django.db import transaction

from core.rules import StateConflict
from jobs import services
from jobs.models import Application, ApplicationStatus, Job, JobStatus
from tests.accounts.factories import WorkerUserFactory
from tests.concurrency import run_together
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, JobFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_accepts_into_the_last_slot_over_http():
    job = JobFactory(workers_needed=1)
    first, second = ApplicationFactory(job=job), ApplicationFactory(job=job)
    owner_a, owner_b = auth_client(job.client), auth_client(job.client)

    responses = run_together(
        lambda: owner_a.post(f"/api/v1/applications/{first.pk}/accept/"),
        lambda: owner_b.post(f"/api/v1/applications/{second.pk}/accept/"),
    )

    assert sorted(r.status_code for r in responses) == [200, 409]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["error"] == "conflict"
    job.refresh_from_db()
    assert (job.accepted_count, job.status) == (1, JobStatus.FILLED)
    statuses = sorted(Application.objects.filter(job=job).values_list("status", flat=True))
    assert statuses == [ApplicationStatus.ACCEPTED, ApplicationStatus.PENDING]


def test_many_accepts_never_overfill():
    job = JobFactory(workers_needed=2)
    applications = [ApplicationFactory(job=job) for _ in range(4)]

    results = run_together(
        *[lambda app=app: services.application_accept(application=app, by=job.client) for app in applications],
        return_exceptions=True,
    )

    winners = [r for r in results if isinstance(r, Application)]
    assert len(winners) == 2
    assert all(isinstance(r, StateConflict) for r in results if r not in winners), results
    job.refresh_from_db()
    assert (job.accepted_count, job.status) == (2, JobStatus.FILLED)
    assert Application.objects.filter(job=job, status=ApplicationStatus.ACCEPTED).count() == 2


def test_accept_waits_for_the_job_lock_before_touching_the_application():
    """While another transaction holds the job row, an accept blocks on the job
    (locked first, in the fixed order) without having locked its application, then
    reads the committed count: it cannot slip into a slot already taken.

    The probe proves the order: during the hold it can lock the contender's
    application with NOWAIT, which would fail had the contender locked it first.
    (The F() update and the job_not_overfilled CHECK would still stop an overfill
    without the lock; this test is about the lock itself.)"""
    job = JobFactory(workers_needed=1)
    first, second = ApplicationFactory(job=job), ApplicationFactory(job=job)
    locked = threading.Event()
    hold_seconds = 0.8

    def holder():
        with transaction.atomic():
            Job.objects.select_for_update().get(pk=job.pk)
            locked.set()
            time.sleep(hold_seconds)
            return services.application_accept(application=first, by=job.client)

    def contender():
        assert locked.wait(10)
        started = time.monotonic()
        try:
            return services.application_accept(application=second, by=job.client)
        except StateConflict as exc:
            return exc, time.monotonic() - started

    def probe():
        assert locked.wait(10)
        time.sleep(hold_seconds / 3)  # the contender is blocked by now
        with transaction.atomic():
            row = Application.objects.select_for_update(nowait=True).get(pk=second.pk)
            return row.status

    held, contended, probed = run_together(holder, contender, probe)

    assert probed == ApplicationStatus.PENDING, f"the contender locked its application before the job: {probed!r}"
    assert isinstance(held, Application) and held.status == ApplicationStatus.ACCEPTED
    assert isinstance(contended, tuple), contended
    exc, waited = contended
    assert isinstance(exc, StateConflict)
    assert waited >= hold_seconds * 0.5, f"the accept did not wait for the lock ({waited:.3f}s)"
    job.refresh_from_db()
    assert (job.accepted_count, job.status) == (1, JobStatus.FILLED)
    second.refresh_from_db()
    assert second.status == ApplicationStatus.PENDING


def test_apply_waits_for_the_job_lock():
    """A second apply by the same worker blocks on the job row and then finds the
    first application: a clean 409 from the rule, not from the unique index."""
    job = JobFactory()
    worker = WorkerUserFactory()
    locked = threading.Event()

    def holder():
        with transaction.atomic():
            Job.objects.select_for_update().get(pk=job.pk)
            locked.set()
            time.sleep(0.5)
            return services.application_create(job=job, worker=worker, cover_note="first")

    def contender():
        assert locked.wait(10)
        started = time.monotonic()
        try:
            return services.application_create(job=job, worker=worker, cover_note="second")
        except StateConflict as exc:
            return exc, time.monotonic() - started

    held, (exc, waited) = run_together(holder, contender)
    assert isinstance(held, Application)
    assert isinstance(exc, StateConflict) and waited >= 0.25
    assert exc.__cause__ is None, "the rule, not the IntegrityError fallback, answered"
    assert list(Application.objects.filter(job=job).values_list("cover_note", flat=True)) == ["first"]


def test_two_concurrent_applies_by_one_worker_make_one_row_over_http():
    job = JobFactory()
    worker = WorkerUserFactory()
    caller_a, caller_b = auth_client(worker), auth_client(worker)

    responses = run_together(
        lambda: caller_a.post(f"/api/v1/jobs/{job.pk}/apply/", {"cover_note": "a"}, format="json"),
        lambda: caller_b.post(f"/api/v1/jobs/{job.pk}/apply/", {"cover_note": "b"}, format="json"),
    )

    assert sorted(r.status_code for r in responses) == [201, 409]
    assert Application.objects.filter(job=job, worker=worker).count() == 1
    job.refresh_from_db()
    assert job.applications_count == 1


def test_concurrent_applies_by_different_workers_all_count():
    job = JobFactory()
    workers = WorkerUserFactory.create_batch(4)

    results = run_together(*[lambda w=w: services.application_create(job=job, worker=w) for w in workers])

    assert all(isinstance(r, Application) for r in results), results
    job.refresh_from_db()
    assert job.applications_count == 4 == Application.objects.filter(job=job).count()
