"""Every write of the jobs app that has a rule behind it: the job lifecycle
(create, edit while open, cancel, start, complete), applications (apply, accept,
reject, withdraw) and saved jobs.

Each service is keyword-only, typed and runs in one transaction. Rows are locked
in one fixed order, the job first and then the application, so two services can
never wait on each other in a cycle. A refusal is a domain error (``core.rules``):
the API answers it with a 400/403/409 envelope, the admin with a form error.
``IntegrityError`` (the database's constraints are the last word) becomes one
too, never a 500.

The rules of time (``timezone.now()``, which tests move with time-machine):
- a job is posted, or re-scheduled while nobody is accepted, to start in the
  future; ``POSTING_CLOCK_SKEW`` (5 minutes) of a client's clock running behind is
  tolerated;
- ``start`` is allowed from ``EARLY_START_WINDOW`` (30 minutes) before the
  scheduled start; ``complete`` from the scheduled start on.

The rules of commitment:
- once a worker is accepted, the job's terms (``FROZEN_TERMS``: rate, currency,
  start, end, city) no longer change; title, description, category, skills and
  ``workers_needed`` (never below the accepted count) still may;
- an accepted application is not withdrawn or rejected: the client's way out is
  cancelling the job, which closes pending applications as ``cancelled`` and
  marks the accepted ones ``hire_cancelled``.

``update()`` skips signals: the services that use it bump the cache scopes
themselves (``core.cache.bump`` runs on commit).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from accounts.cache import user_scope
from accounts.models import User
from core.cache import bump
from core.rules import Invalid, NotAllowed, StateConflict

from .cache import applications_scope, job_counter_scopes, job_scopes
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
# The terms a worker was accepted on: fixed from the first acceptance on.
FROZEN_TERMS = ("rate", "currency", "start_at", "end_at", "city")
# The most workers one job may ask for (the API's serializer says it first).
MAX_WORKERS_NEEDED = 1000
# How far behind the server a client's clock may be when posting "starts now".
POSTING_CLOCK_SKEW = timedelta(minutes=5)
# How long before the scheduled start a shift may be started (workers arrive early).
EARLY_START_WINDOW = timedelta(minutes=30)


def _lock_job(job_id: int) -> Job:
    """The job row, locked until the transaction ends (a no-op on SQLite, whose
    writers are serialised anyway)."""
    return Job.objects.select_for_update().get(pk=job_id)


def _lock_application(application_id: int) -> Application:
    return Application.objects.select_for_update().get(pk=application_id)


def _require_owner(job: Job, user: User) -> None:
    """The job's client, or staff (the admin acts for the marketplace: the API's
    views only let the owner reach these services)."""
    if job.client_id != user.pk and not user.is_staff:
        raise NotAllowed("Only the client who posted this job may do that.")


def _require_future_start(start_at) -> None:
    if start_at < timezone.now() - POSTING_CLOCK_SKEW:
        raise Invalid("Must be in the future: a shift cannot be posted to start in the past.", field="start_at")


def _require_known_terms(data: dict[str, Any]) -> None:
    """A currency the platform pays in (else the job could never be paid: a payment
    is in the job's currency) and a bounded head count. The API's serializer says
    the same first; the admin's form reaches only this."""
    if "currency" in data and data["currency"] not in settings.CURRENCIES:
        raise Invalid(f"Must be one of {', '.join(settings.CURRENCIES)}.", field="currency")
    if "workers_needed" in data and not 1 <= data["workers_needed"] <= MAX_WORKERS_NEEDED:
        raise Invalid(f"Must be between 1 and {MAX_WORKERS_NEEDED}.", field="workers_needed")


def _require_ends_after_start(start_at, end_at) -> None:
    if end_at <= start_at:
        raise Invalid("Must be after start_at.", field="end_at")


# --- jobs ----------------------------------------------------------------------

def _integrity_error(exc: IntegrityError) -> Invalid:
    text = str(exc)
    if "job_ends_after_start" in text:
        return Invalid("Must be after start_at.", field="end_at")
    if "job_rate_positive" in text:
        return Invalid("Must be greater than 0.", field="rate")
    return Invalid("The job violates a rule of the data model.")


@transaction.atomic
def job_create(*, client: User, data: dict[str, Any]) -> Job:
    """A new open job posted by ``client`` (the caller, whatever the body says),
    starting in the future."""
    if not client.is_client:
        raise NotAllowed("Only clients post jobs.")
    skills = data.get("skills", [])
    fields = {name: data[name] for name in EDITABLE_FIELDS if name in data}
    _require_known_terms(fields)
    if "start_at" in fields:
        _require_future_start(fields["start_at"])
        if "end_at" in fields:
            _require_ends_after_start(fields["start_at"], fields["end_at"])
    try:
        with transaction.atomic():
            job = Job.objects.create(client=client, status=JobStatus.OPEN, **fields)
    except IntegrityError as exc:
        raise _integrity_error(exc) from exc
    if skills:
        job.skills.set(skills)
    return job


@transaction.atomic
def job_update(*, job: Job, by: User, data: dict[str, Any]) -> Job:
    """Edit a job while it is open or filled (409 otherwise). Once a worker is
    accepted the terms (``FROZEN_TERMS``) are fixed: changing one is a 409 (sending
    the same value is not a change). ``workers_needed`` never drops below the
    accepted count; the status follows it: down to the count fills the job (hiring
    ends), above it opens the job again. Status, client and counters are not
    editable here."""
    job = _lock_job(job.pk)
    _require_owner(job, by)
    if job.status not in (JobStatus.OPEN, JobStatus.FILLED):
        raise StateConflict(f"A job can only be edited while open or filled; this one is {job.status}.")
    if job.accepted_count:
        changed_terms = [name for name in FROZEN_TERMS if name in data and data[name] != getattr(job, name)]
        if changed_terms:
            raise StateConflict(
                f"A worker is already accepted on these terms: {', '.join(changed_terms)} can no longer "
                "change (title, description, category, skills and workers_needed still may).",
                details={"frozen": changed_terms},
            )
    _require_known_terms(data)
    if "workers_needed" in data and data["workers_needed"] != job.workers_needed:
        # Open means there is room (accepted_count < workers_needed: never open and
        # full), filled that there is none.
        if data["workers_needed"] < job.accepted_count:
            raise Invalid(
                f"Must be at least the {job.accepted_count} workers already accepted.", field="workers_needed"
            )
        job.status = JobStatus.FILLED if data["workers_needed"] == job.accepted_count else JobStatus.OPEN
    if "start_at" in data and data["start_at"] != job.start_at:
        _require_future_start(data["start_at"])
    _require_ends_after_start(data.get("start_at", job.start_at), data.get("end_at", job.end_at))
    changed = [name for name in EDITABLE_FIELDS if name in data]
    for name in changed:
        setattr(job, name, data[name])
    try:
        with transaction.atomic():
            job.save()
    except IntegrityError as exc:
        raise _integrity_error(exc) from exc
    if "skills" in data:
        job.skills.set(data["skills"])
    return job


@transaction.atomic
def job_cancel(*, job: Job, by: User) -> Job:
    """``open`` or ``filled`` -> ``cancelled``; any other state is a 409. What hangs
    on the job ends with it: pending applications become ``cancelled``, accepted
    ones ``hire_cancelled``, in the same transaction."""
    job = _lock_job(job.pk)
    _require_owner(job, by)
    if job.status not in (JobStatus.OPEN, JobStatus.FILLED):
        raise StateConflict(f"Only an open or filled job can be cancelled; this one is {job.status}.")
    job.status = JobStatus.CANCELLED
    job.save(update_fields=["status", "updated_at"])
    # The job's lock keeps applies and accepts out (they lock it first), so no
    # application can turn pending or accepted after these updates.
    closing = Application.objects.for_job(job).filter(
        status__in=(ApplicationStatus.PENDING, ApplicationStatus.ACCEPTED)
    )
    worker_ids = list(closing.values_list("worker_id", flat=True))
    if worker_ids:
        closing.update(
            status=Case(
                When(status=ApplicationStatus.ACCEPTED, then=Value(ApplicationStatus.HIRE_CANCELLED)),
                default=Value(ApplicationStatus.CANCELLED),
            ),
            updated_at=timezone.now(),
        )
        # update() skips signals: the workers' and the client's application lists
        # (the job's own list hangs on job:<id>, which the job's save bumped).
        bump(*(applications_scope(pk) for pk in {job.client_id, *worker_ids}))
    return job


@transaction.atomic
def job_start(*, job: Job, by: User) -> Job:
    """``filled`` -> ``in_progress``, from ``EARLY_START_WINDOW`` before the
    scheduled start on; any other state, or earlier, is a 409."""
    job = _lock_job(job.pk)
    _require_owner(job, by)
    if job.status != JobStatus.FILLED:
        raise StateConflict(f"Only a filled job can be started; this one is {job.status}.")
    opens_at = job.start_at - EARLY_START_WINDOW
    if timezone.now() < opens_at:
        raise StateConflict(
            f"Too early: this shift can be started from {opens_at.isoformat()} "
            f"({int(EARLY_START_WINDOW.total_seconds() // 60)} minutes before its start).",
            details={"can_start_at": opens_at.isoformat()},
        )
    job.status = JobStatus.IN_PROGRESS
    job.save(update_fields=["status", "updated_at"])
    return job


@transaction.atomic
def job_complete(*, job: Job, by: User) -> Job:
    """``in_progress`` -> ``completed`` once the scheduled start has passed, and one
    more completed job for the client and every accepted worker, in the same
    transaction."""
    job = _lock_job(job.pk)
    _require_owner(job, by)
    if job.status != JobStatus.IN_PROGRESS:
        raise StateConflict(f"Only a job in progress can be completed; this one is {job.status}.")
    if timezone.now() < job.start_at:
        raise StateConflict(
            f"Too early: this shift has not started yet; it can be completed from {job.start_at.isoformat()}.",
            details={"can_complete_at": job.start_at.isoformat()},
        )
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
        raise NotAllowed("Only workers apply to jobs.")
    # Lock the job first: two applies by the same worker then run one after the
    # other, and the second sees the first's row (the unique constraint backs it).
    job = _lock_job(job.pk)
    if job.client_id == worker.pk:
        raise Invalid("You cannot apply to your own job.", field="job")
    if job.status != JobStatus.OPEN:
        raise StateConflict(f"This job is {job.status}; it takes no applications.")
    if Application.objects.for_job(job).made_by(worker).exists():
        raise StateConflict("You have already applied to this job.")
    try:
        with transaction.atomic():
            application = Application.objects.create(job=job, worker=worker, cover_note=cover_note)
    except IntegrityError as exc:
        raise StateConflict("You have already applied to this job.") from exc
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


def _require_pending(application: Application, verb: str) -> None:
    if application.status == ApplicationStatus.ACCEPTED and verb != "accepted":
        raise StateConflict(
            f"An accepted application cannot be {verb}: the client's way out is cancelling the job."
        )
    if application.status != ApplicationStatus.PENDING:
        raise StateConflict(f"Only a pending application can be {verb}; this one is {application.status}.")


@transaction.atomic
def application_accept(*, application: Application, by: User) -> Application:
    """``pending`` -> ``accepted`` by the job's client; the job turns ``filled`` when
    the accepted count reaches ``workers_needed``. Full or not open -> 409."""
    # The job lock comes first: two accepts into the last slot would otherwise both
    # see room. The second waits here and then reads the first one's count.
    job, application = _locked_pair(application)
    _require_owner(job, by)
    _require_pending(application, "accepted")
    if job.status != JobStatus.OPEN:
        raise StateConflict(f"This job is {job.status}; it accepts no more workers.")
    if job.accepted_count >= job.workers_needed:
        raise StateConflict("This job already has all the workers it needs.")
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
        raise StateConflict("This job already has all the workers it needs.") from exc
    status_before = job.status
    job.refresh_from_db(fields=["accepted_count", "status", "updated_at"])
    # update() skips signals. Only a status change (now filled) moves the job in
    # or out of filtered job lists; a count alone retires the entries showing it.
    bump(*(job_scopes(job) if job.status != status_before else job_counter_scopes(job)))
    return application


@transaction.atomic
def application_reject(*, application: Application, by: User) -> Application:
    """``pending`` -> ``rejected`` by the job's client (an accepted one: 409)."""
    job, application = _locked_pair(application)
    _require_owner(job, by)
    _require_pending(application, "rejected")
    application.status = ApplicationStatus.REJECTED
    application.save(update_fields=["status", "updated_at"])
    return application


@transaction.atomic
def application_withdraw(*, application: Application, by: User) -> Application:
    """``pending`` -> ``withdrawn`` by the worker who applied (an accepted one: 409)."""
    job, application = _locked_pair(application)
    if application.worker_id != by.pk:
        raise NotAllowed("Only the worker who applied may withdraw.")
    _require_pending(application, "withdrawn")
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
