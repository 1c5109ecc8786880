"""Every write of the jobs app that has a rule behind it: the job lifecycle
(create, edit while open, cancel, start, complete), applications (apply, accept,
reject, withdraw) and saved jobs.

Each service is keyword-only, typed and runs in one transaction. Rows are locked
in one fixed order, the job first and then the application, so two services can
never wait on each other in a cycle. ``IntegrityError`` (the database's
constraints are the last word) becomes a 409 or 400, never a 500.

``update()`` skips signals: the services that use it bump the cache scopes
themselves (``core.cache.bump`` runs on commit).
"""
from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied, ValidationError

from accounts.cache import user_scope
from accounts.models import User
from core.cache import bump
from core.envelope import Conflict

from .cache import job_counter_scopes, job_scopes
from .models import Application, ApplicationStatus, Job, JobStatus, SavedJob

EDITABLE_FIELDS = (
    "title",
    "description",
    "category",
    "city",
    "rate",
    "currency",
    "workers_needed",
    "start_at",
    "end_at",
)


def _lock_job(job_id: int) -> Job:
    """The job row, locked until the transaction ends (a no-op on SQLite, whose
    writers are serialised anyway)."""
    return Job.objects.select_for_update().get(pk=job_id)


def _lock_application(application_id: int) -> Application:
    return Application.objects.select_for_update().get(pk=application_id)


def _require_owner(job: Job, user: User) -> None:
    if job.client_id != user.pk:
        raise PermissionDenied("Only the client who posted this job may do that.")


# --- jobs ----------------------------------------------------------------------

@transaction.atomic
def job_create(*, client: User, data: dict[str, Any]) -> Job:
    """A new open job posted by ``client`` (the caller, whatever the body says)."""
    if not client.is_client:
        raise PermissionDenied("Only clients post jobs.")
    skills = data.get("skills", [])
    fields = {name: data[name] for name in EDITABLE_FIELDS if name in data}
    try:
        with transaction.atomic():
            job = Job.objects.create(client=client, status=JobStatus.OPEN, **fields)
    except IntegrityError as exc:
        raise ValidationError({"non_field_errors": ["The job violates a rule of the data model."]}) from exc
    if skills:
        job.skills.set(skills)
    return job


@transaction.atomic
def job_update(*, job: Job, by: User, data: dict[str, Any]) -> Job:
    """Edit a job while it is open (409 otherwise). Status, client and counters are
    not editable here."""
    job = _lock_job(job.pk)
    _require_owner(job, by)
    if job.status != JobStatus.OPEN:
        raise Conflict(f"A job can only be edited while open; this one is {job.status}.")
    workers_needed = data.get("workers_needed", job.workers_needed)
    # While open, there must still be room: accepted_count < workers_needed.
    if workers_needed <= job.accepted_count:
        raise ValidationError(
            {"workers_needed": [f"Must be more than the {job.accepted_count} workers already accepted."]}
        )
    changed = [name for name in EDITABLE_FIELDS if name in data]
    for name in changed:
        setattr(job, name, data[name])
    try:
        with transaction.atomic():
            job.save()
    except IntegrityError as exc:
        raise ValidationError({"non_field_errors": ["The job violates a rule of the data model."]}) from exc
    if "skills" in data:
        job.skills.set(data["skills"])
    return job


@transaction.atomic
def job_cancel(*, job: Job, by: User) -> Job:
    """``open`` or ``filled`` -> ``cancelled``; any other state is a 409."""
    job = _lock_job(job.pk)
    _require_owner(job, by)
    if job.status not in (JobStatus.OPEN, JobStatus.FILLED):
        raise Conflict(f"Only an open or filled job can be cancelled; this one is {job.status}.")
    job.status = JobStatus.CANCELLED
    job.save(update_fields=["status", "updated_at"])
    return job


@transaction.atomic
def job_start(*, job: Job, by: User) -> Job:
    """``filled`` -> ``in_progress``; any other state is a 409."""
    job = _lock_job(job.pk)
    _require_owner(job, by)
    if job.status != JobStatus.FILLED:
        raise Conflict(f"Only a filled job can be started; this one is {job.status}.")
    job.status = JobStatus.IN_PROGRESS
    job.save(update_fields=["status", "updated_at"])
    return job


@transaction.atomic
def job_complete(*, job: Job, by: User) -> Job:
    """``in_progress`` -> ``completed``, and one more completed job for the client and
    every accepted worker, in the same transaction."""
    job = _lock_job(job.pk)
    _require_owner(job, by)
    if job.status != JobStatus.IN_PROGRESS:
        raise Conflict(f"Only a job in progress can be completed; this one is {job.status}.")
    job.status = JobStatus.COMPLETED
    job.save(update_fields=["status", "updated_at"])
    worker_ids = list(Application.objects.for_job(job).accepted().values_list("worker_id", flat=True))
    user_ids = {job.client_id, *worker_ids}
    # F() so a concurrent completion of another job can't lose an increment.
    User.objects.filter(pk__in=user_ids).update(completed_jobs=F("completed_jobs") + 1)
    # update() skips signals: retire the users' cached profiles and the entries showing them.
    bump(*(user_scope(pk) for pk in user_ids))
    return job


# --- applications --------------------------------------------------------------

@transaction.atomic
def application_create(*, job: Job, worker: User, cover_note: str = "") -> Application:
    """A worker applies to an open job: one application per job and worker."""
    if not worker.is_worker:
        raise PermissionDenied("Only workers apply to jobs.")
    # Lock the job first: two applies by the same worker then run one after the
    # other, and the second sees the first's row (the unique constraint backs it).
    job = _lock_job(job.pk)
    if job.client_id == worker.pk:
        raise ValidationError({"job": ["You cannot apply to your own job."]})
    if job.status != JobStatus.OPEN:
        raise Conflict(f"This job is {job.status}; it takes no applications.")
    if Application.objects.for_job(job).made_by(worker).exists():
        raise Conflict("You have already applied to this job.")
    try:
        with transaction.atomic():
            application = Application.objects.create(job=job, worker=worker, cover_note=cover_note)
    except IntegrityError as exc:
        raise Conflict("You have already applied to this job.") from exc
    # The counter lives on the job row so lists never count per row; F() under the lock.
    Job.objects.filter(pk=job.pk).update(applications_count=F("applications_count") + 1)
    bump(*job_counter_scopes(job))  # update() skips signals; a count only: job lists keep their rows
    return application


def _locked_pair(application: Application) -> tuple[Job, Application]:
    """Lock the application's job, then the application (the fixed order)."""
    job = _lock_job(application.job_id)
    locked = _lock_application(application.pk)
    locked.job = job  # the signal's scopes read job.client_id: no extra query
    return job, locked


@transaction.atomic
def application_accept(*, application: Application, by: User) -> Application:
    """``pending`` -> ``accepted`` by the job's client; the job turns ``filled`` when
    the accepted count reaches ``workers_needed``. Full or not open -> 409."""
    # The job lock comes first: two accepts into the last slot would otherwise both
    # see room. The second waits here and then reads the first one's count.
    job, application = _locked_pair(application)
    _require_owner(job, by)
    if application.status != ApplicationStatus.PENDING:
        raise Conflict(f"Only a pending application can be accepted; this one is {application.status}.")
    if job.status != JobStatus.OPEN:
        raise Conflict(f"This job is {job.status}; it accepts no more workers.")
    if job.accepted_count >= job.workers_needed:
        raise Conflict("This job already has all the workers it needs.")
    application.status = ApplicationStatus.ACCEPTED
    application.save(update_fields=["status", "updated_at"])
    try:
        with transaction.atomic():
            # F() and the job_not_overfilled CHECK make overfilling impossible even
            # for a writer that skipped the lock.
            Job.objects.filter(pk=job.pk).update(
                accepted_count=F("accepted_count") + 1,
                status=Case(
                    When(workers_needed__lte=F("accepted_count") + 1, then=Value(JobStatus.FILLED)),
                    default=F("status"),
                ),
                updated_at=timezone.now(),
            )
    except IntegrityError as exc:
        raise Conflict("This job already has all the workers it needs.") from exc
    status_before = job.status
    job.refresh_from_db(fields=["accepted_count", "status", "updated_at"])
    # update() skips signals. Only a status change (now filled) moves the job in
    # or out of filtered job lists; a count alone retires the entries showing it.
    bump(*(job_scopes(job) if job.status != status_before else job_counter_scopes(job)))
    return application


@transaction.atomic
def application_reject(*, application: Application, by: User) -> Application:
    """``pending`` -> ``rejected`` by the job's client."""
    job, application = _locked_pair(application)
    _require_owner(job, by)
    if application.status != ApplicationStatus.PENDING:
        raise Conflict(f"Only a pending application can be rejected; this one is {application.status}.")
    application.status = ApplicationStatus.REJECTED
    application.save(update_fields=["status", "updated_at"])
    return application


@transaction.atomic
def application_withdraw(*, application: Application, by: User) -> Application:
    """``pending`` -> ``withdrawn`` by the worker who applied."""
    job, application = _locked_pair(application)
    if application.worker_id != by.pk:
        raise PermissionDenied("Only the worker who applied may withdraw.")
    if application.status != ApplicationStatus.PENDING:
        raise Conflict(f"Only a pending application can be withdrawn; this one is {application.status}.")
    application.status = ApplicationStatus.WITHDRAWN
    application.save(update_fields=["status", "updated_at"])
    return application


# --- saved jobs ----------------------------------------------------------------

@transaction.atomic
def job_save(*, job: Job, user: User) -> tuple[SavedJob, bool]:
    """Save ``job`` for ``user``; ``created`` is False when it was saved already
    (``get_or_create`` absorbs the unique-constraint race)."""
    return SavedJob.objects.get_or_create(user=user, job=job)


@transaction.atomic
def job_unsave(*, job: Job, user: User) -> bool:
    """Forget a saved job; True when there was one. Deleting through the ORM sends
    ``post_delete``, which bumps the user's saved-jobs scope."""
    deleted, _ = SavedJob.objects.of_user(user).filter(job=job).delete()
    return bool(deleted)
