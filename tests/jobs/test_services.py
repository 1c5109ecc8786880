"""The job lifecycle services (jobs/services.py): every rule, called directly."""
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Role
from core.rules import Invalid, NotAllowed, StateConflict
from jobs import services
from jobs.models import Application, ApplicationStatus, Job, JobStatus, SavedJob
from tests.accounts.factories import ClientUserFactory, SkillFactory, WorkerUserFactory
from tests.jobs.factories import ApplicationFactory, CategoryFactory, JobFactory

pytestmark = pytest.mark.django_db


def _job_data(**overrides):
    start = timezone.now() + timedelta(days=3)
    data = {
        "title": "Barista",
        "description": "Morning shift",
        "category": CategoryFactory(),
        "city": "Berlin",
        "rate": Decimal("15.00"),
        "currency": "EUR",
        "workers_needed": 2,
        "start_at": start,
        "end_at": start + timedelta(hours=6),
    }
    data.update(overrides)
    return data


def _reload(obj):
    obj.refresh_from_db()
    return obj


class TestJobCreateUpdate:
    def test_create_sets_client_open_and_skills(self):
        client = ClientUserFactory()
        skills = [SkillFactory(name="Coffee"), SkillFactory(name="Cash")]
        job = services.job_create(client=client, data=_job_data(skills=skills))
        job = _reload(job)
        assert job.client == client
        assert job.status == JobStatus.OPEN
        assert job.applications_count == 0 and job.accepted_count == 0
        assert sorted(job.skills.values_list("name", flat=True)) == ["Cash", "Coffee"]

    def test_worker_cannot_create(self):
        with pytest.raises(NotAllowed):
            services.job_create(client=WorkerUserFactory(), data=_job_data())

    def test_constraint_violation_is_a_validation_error(self):
        start = timezone.now()
        with pytest.raises(Invalid):
            services.job_create(client=ClientUserFactory(), data=_job_data(start_at=start, end_at=start))
        assert Job.objects.count() == 0

    def test_update_while_open(self):
        job = JobFactory()
        services.job_update(job=job, by=job.client, data={"title": "New title", "rate": Decimal("30.00")})
        job = _reload(job)
        assert job.title == "New title" and job.rate == Decimal("30.00")

    @pytest.mark.parametrize("state", [JobStatus.IN_PROGRESS, JobStatus.COMPLETED, JobStatus.CANCELLED])
    def test_update_outside_open_or_filled_conflicts(self, state):
        job = JobFactory(status=state)
        with pytest.raises(StateConflict):
            services.job_update(job=job, by=job.client, data={"title": "x"})
        assert _reload(job).title != "x"

    def test_update_by_other_user_denied(self):
        job = JobFactory()
        with pytest.raises(NotAllowed):
            services.job_update(job=job, by=ClientUserFactory(), data={"title": "x"})

    def test_workers_needed_cannot_drop_below_accepted_count(self):
        job = JobFactory(workers_needed=3)
        for _ in range(2):
            services.application_accept(application=ApplicationFactory(job=job), by=job.client)
        with pytest.raises(Invalid):
            services.job_update(job=job, by=job.client, data={"workers_needed": 1})
        services.job_update(job=job, by=job.client, data={"workers_needed": 2})
        assert (_reload(job).workers_needed, _reload(job).status) == (2, JobStatus.FILLED)
        services.job_update(job=job, by=job.client, data={"workers_needed": 4})
        assert (_reload(job).workers_needed, _reload(job).status) == (4, JobStatus.OPEN)


class TestLifecycle:
    @pytest.mark.parametrize("state", [JobStatus.OPEN, JobStatus.FILLED])
    def test_cancel_from_open_or_filled(self, state):
        job = JobFactory(status=state)
        services.job_cancel(job=job, by=job.client)
        assert _reload(job).status == JobStatus.CANCELLED

    @pytest.mark.parametrize("state", [JobStatus.IN_PROGRESS, JobStatus.COMPLETED, JobStatus.CANCELLED])
    def test_cancel_from_other_states_conflicts(self, state):
        job = JobFactory(status=state)
        with pytest.raises(StateConflict):
            services.job_cancel(job=job, by=job.client)
        assert _reload(job).status == state

    def test_start_only_from_filled(self):
        job = JobFactory()
        with pytest.raises(StateConflict):
            services.job_start(job=job, by=job.client)
        services.application_accept(application=ApplicationFactory(job=job), by=job.client)
        with time_machine.travel(job.start_at - services.EARLY_START_WINDOW, tick=False):
            services.job_start(job=job, by=job.client)
        assert _reload(job).status == JobStatus.IN_PROGRESS

    def test_complete_counts_client_and_accepted_workers_once(self):
        job = JobFactory(workers_needed=2)
        accepted = [ApplicationFactory(job=job) for _ in range(2)]
        rejected = ApplicationFactory(job=job)
        for app in accepted:
            services.application_accept(application=app, by=job.client)
        with pytest.raises(StateConflict):  # filled, not yet in progress
            services.job_complete(job=job, by=job.client)
        with time_machine.travel(job.start_at, tick=False):
            services.job_start(job=job, by=job.client)
            services.job_complete(job=job, by=job.client)
        assert _reload(job).status == JobStatus.COMPLETED
        assert _reload(job.client).completed_jobs == 1
        assert [_reload(a.worker).completed_jobs for a in accepted] == [1, 1]
        assert _reload(rejected.worker).completed_jobs == 0
        with pytest.raises(StateConflict):  # already completed
            services.job_complete(job=job, by=job.client)
        assert _reload(job.client).completed_jobs == 1

    def test_lifecycle_needs_owner(self):
        job = JobFactory(status=JobStatus.FILLED)
        for service in (services.job_cancel, services.job_start, services.job_complete):
            with pytest.raises(NotAllowed):
                service(job=job, by=ClientUserFactory())
        assert _reload(job).status == JobStatus.FILLED


class TestApply:
    def test_apply_creates_and_counts(self):
        job = JobFactory()
        worker = WorkerUserFactory()
        app = services.application_create(job=job, worker=worker, cover_note="Hello")
        assert app.status == ApplicationStatus.PENDING and app.cover_note == "Hello"
        assert _reload(job).applications_count == 1

    def test_twice_conflicts_and_counts_once(self):
        job = JobFactory()
        worker = WorkerUserFactory()
        services.application_create(job=job, worker=worker)
        with pytest.raises(StateConflict):
            services.application_create(job=job, worker=worker)
        assert Application.objects.filter(job=job).count() == 1
        assert _reload(job).applications_count == 1

    @pytest.mark.parametrize("state", [JobStatus.FILLED, JobStatus.IN_PROGRESS, JobStatus.COMPLETED, JobStatus.CANCELLED])
    def test_not_open_conflicts(self, state):
        job = JobFactory(status=state)
        with pytest.raises(StateConflict):
            services.application_create(job=job, worker=WorkerUserFactory())
        assert _reload(job).applications_count == 0

    def test_client_cannot_apply(self):
        with pytest.raises(NotAllowed):
            services.application_create(job=JobFactory(), worker=ClientUserFactory())

    def test_own_job_is_refused(self):
        # Only reachable if a client became a worker; guarded anyway.
        job = JobFactory()
        owner = job.client
        owner.role = Role.WORKER
        owner.save()
        with pytest.raises(Invalid):
            services.application_create(job=job, worker=owner)
        assert not Application.objects.exists()

    def test_unique_constraint_backs_the_rule(self):
        app = ApplicationFactory()
        with pytest.raises(IntegrityError), transaction.atomic():
            Application.objects.create(job=app.job, worker=app.worker)


class TestAcceptRejectWithdraw:
    def test_accept_fills_at_workers_needed(self):
        job = JobFactory(workers_needed=2)
        a1, a2, a3 = (ApplicationFactory(job=job) for _ in range(3))
        services.application_accept(application=a1, by=job.client)
        job = _reload(job)
        assert (job.accepted_count, job.status) == (1, JobStatus.OPEN)
        result = services.application_accept(application=a2, by=job.client)
        assert result.status == ApplicationStatus.ACCEPTED
        assert result.job.status == JobStatus.FILLED
        job = _reload(job)
        assert (job.accepted_count, job.status) == (2, JobStatus.FILLED)
        with pytest.raises(StateConflict):
            services.application_accept(application=a3, by=job.client)
        assert _reload(a3).status == ApplicationStatus.PENDING
        assert _reload(job).accepted_count == 2

    def test_accept_twice_conflicts(self):
        job = JobFactory(workers_needed=3)
        app = ApplicationFactory(job=job)
        services.application_accept(application=app, by=job.client)
        with pytest.raises(StateConflict):
            services.application_accept(application=app, by=job.client)
        assert _reload(job).accepted_count == 1

    def test_accept_on_cancelled_job_conflicts(self):
        app = ApplicationFactory(job=JobFactory(status=JobStatus.CANCELLED))
        with pytest.raises(StateConflict):
            services.application_accept(application=app, by=app.job.client)

    def test_overfill_is_impossible_in_the_database(self):
        job = JobFactory(workers_needed=1, accepted_count=1, status=JobStatus.FILLED)
        with pytest.raises(IntegrityError), transaction.atomic():
            Job.objects.filter(pk=job.pk).update(accepted_count=2)

    @pytest.mark.parametrize(
        "service,final",
        [(services.application_reject, ApplicationStatus.REJECTED), (services.application_accept, ApplicationStatus.ACCEPTED)],
    )
    def test_owner_transitions(self, service, final):
        app = ApplicationFactory()
        service(application=app, by=app.job.client)
        assert _reload(app).status == final
        with pytest.raises(StateConflict):
            services.application_reject(application=app, by=app.job.client)

    def test_owner_transitions_need_the_owner(self):
        app = ApplicationFactory()
        for service in (services.application_accept, services.application_reject):
            with pytest.raises(NotAllowed):
                service(application=app, by=app.worker)
        assert _reload(app).status == ApplicationStatus.PENDING

    def test_withdraw_by_worker_only_while_pending(self):
        app = ApplicationFactory()
        with pytest.raises(NotAllowed):
            services.application_withdraw(application=app, by=app.job.client)
        services.application_withdraw(application=app, by=app.worker)
        assert _reload(app).status == ApplicationStatus.WITHDRAWN
        with pytest.raises(StateConflict):
            services.application_withdraw(application=app, by=app.worker)
        with pytest.raises(StateConflict):
            services.application_accept(application=app, by=app.job.client)


class TestSaved:
    def test_save_is_idempotent_and_unsave_removes(self):
        job = JobFactory()
        user = WorkerUserFactory()
        _, created = services.job_save(job=job, user=user)
        assert created is True
        _, created = services.job_save(job=job, user=user)
        assert created is False
        assert SavedJob.objects.filter(user=user).count() == 1
        assert services.job_unsave(job=job, user=user) is True
        assert services.job_unsave(job=job, user=user) is False
        assert not SavedJob.objects.exists()
