"""Review writes: the client and an accepted worker of a completed job review
each other, once per job and direction; the reviewed user's denormalised
rating (rating_sum, rating_count) changes in the same transaction."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F

from accounts.cache import user_scope
from core.cache import bump
from core.envelope import is_unique_violation
from core.rules import Invalid, NotAllowed, StateConflict
from jobs.models import Application, ApplicationStatus, Job, JobStatus

from .models import Review


def _integrity_error(exc: IntegrityError) -> Exception:
    """The API error for a constraint the database refused (the serializer and the
    checks above normally catch these first; the database is the last word)."""
    text = str(exc)
    if "review_rating_1_5" in text:
        return Invalid("Must be between 1 and 5.", field="rating")
    if "review_not_self" in text:
        return Invalid("You cannot review yourself.", field="reviewed")
    if is_unique_violation(exc):
        return StateConflict("You have already reviewed this person for this job.")
    return Invalid("The review breaks a rule of the database.")


def review_create(*, reviewer, job: int, reviewed: int, rating: int, comment: str = "") -> Review:
    """Create a review by ``reviewer`` of ``reviewed`` for the completed ``job``.

    Rules: the job is completed (else 400); the reviewer is its client or one of
    its accepted workers (else 403); the reviewed user is the other side: an
    accepted worker when the client reviews, the client when a worker does (else
    400); once per job and direction (409, from the unique constraint)."""
    User = get_user_model()
    with transaction.atomic():
        job_row = Job.objects.select_related("client").filter(pk=job).first()
        if job_row is None:
            raise Invalid("No job has this id.", field="job")
        if job_row.status != JobStatus.COMPLETED:
            raise Invalid("Only a completed job can be reviewed.", field="job")
        accepted = set(
            Application.objects.filter(
                job_id=job_row.pk, status=ApplicationStatus.ACCEPTED, worker_id__in=[reviewer.pk, reviewed]
            ).values_list("worker_id", flat=True)
        )
        reviewer_is_client = reviewer.pk == job_row.client_id
        if not reviewer_is_client and reviewer.pk not in accepted:
            raise NotAllowed("Only the client and the accepted workers of this job can review it.")
        counterpart_ok = reviewed in accepted if reviewer_is_client else reviewed == job_row.client_id
        if not counterpart_ok:
            raise Invalid("Must be the other side of the job: an accepted worker, or the client.", field="reviewed")

        # Lock the reviewed user's row before writing: concurrent reviews of one user
        # add to rating_sum one after the other, and a second review of the same
        # direction waits here, then hits the unique constraint (409).
        # NO KEY UPDATE, not UPDATE: the review's foreign keys take KEY SHARE locks on
        # both users at commit; with FOR UPDATE, A reviewing B while B reviews A
        # deadlocks (each holds the row the other's FK check needs).
        reviewed_user = User.objects.select_for_update(no_key=True).filter(pk=reviewed).first()
        if reviewed_user is None:
            raise Invalid("No user has this id.", field="reviewed")
        review = Review(
            job=job_row, reviewer=reviewer, reviewed=reviewed_user, rating=rating, comment=comment
        )
        try:
            with transaction.atomic():  # a savepoint: keep the outer transaction usable
                review.save(force_insert=True)
        except IntegrityError as exc:
            raise _integrity_error(exc) from exc

        # F() keeps the sums right even without the lock; update() sends no signal,
        # so the user's cache scopes are bumped here (after commit, by core.cache.bump).
        User.objects.filter(pk=reviewed_user.pk).update(
            rating_sum=F("rating_sum") + rating, rating_count=F("rating_count") + 1
        )
        bump(user_scope(reviewed_user.pk))  # the entries showing this user, only
        # The row is locked, so these are the values just written (no re-read).
        reviewed_user.rating_sum += rating
        reviewed_user.rating_count += 1
    return review
