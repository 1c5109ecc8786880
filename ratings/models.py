"""Reviews between the client and an accepted worker of a completed job."""
from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.models import TimeStampedModel

# The largest id a BigAutoField holds: a path id above it matches no row (rather
# than overflowing the database driver).


class ReviewQuerySet(models.QuerySet):
    def for_list(self):
        """Review rows with job, reviewer and reviewed: 1 query (+1 COUNT when paginated)."""
        return self.select_related("job", "reviewer", "reviewed")

    def received_by(self, user_id):
        """Reviews written about ``user_id`` (index review_received_newest)."""
        return self.filter(reviewed_id=user_id)

    def given_by(self, user_id):
        """Reviews written by ``user_id`` (index review_given_newest)."""
        return self.filter(reviewer_id=user_id)


class Review(TimeStampedModel):
    # Covered by review_once_per_direction (job, ...) and review_*_newest (user, created_at).
    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="reviews", db_index=False)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews_given", db_index=False
    )
    reviewed = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews_received", db_index=False
    )
    rating = models.PositiveSmallIntegerField()
    comment = models.TextField(max_length=2000, blank=True)

    objects = models.Manager.from_queryset(ReviewQuerySet)()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["reviewed", "-created_at"], name="review_received_newest"),
            # GET /reviews/ unfiltered: without it, a sort of every review joined to jobs.
            models.Index(fields=["-created_at", "-id"], name="review_newest"),
            models.Index(fields=["reviewer", "-created_at"], name="review_given_newest"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(rating__gte=1) & Q(rating__lte=5), name="review_rating_1_5"),
            models.CheckConstraint(condition=~Q(reviewer=F("reviewed")), name="review_not_self"),
            models.UniqueConstraint(fields=["job", "reviewer", "reviewed"], name="review_once_per_direction"),
        ]

    def __str__(self):
        return f"{self.reviewer_id} -> {self.reviewed_id}: {self.rating}"
