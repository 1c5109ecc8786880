"""Categories, jobs (shifts) and applications to them, and saved jobs."""
from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import TimeStampedModel


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self):
        return self.name


class JobStatus(models.TextChoices):
    OPEN = "open", "Open"
    FILLED = "filled", "Filled"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class JobQuerySet(models.QuerySet):
    def for_list(self):
        """Job rows with category, client and skills: 1 query + 1 for skills."""
        return self.select_related("category", "client").prefetch_related("skills")

    def for_detail(self):
        """Same shape as a list row."""
        return self.for_list()

    def owned_by(self, user):
        """Jobs posted by ``user``."""
        return self.filter(client=user)

    def open(self):
        return self.filter(status=JobStatus.OPEN)


class Job(TimeStampedModel):
    client = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs")
    title = models.CharField(max_length=200)
    description = models.TextField(max_length=10000, blank=True)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="jobs")
    skills = models.ManyToManyField("accounts.Skill", related_name="jobs", blank=True)
    city = models.CharField(max_length=100)
    rate = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    workers_needed = models.PositiveSmallIntegerField(default=1)
    start_at = models.DateTimeField()
    end_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.OPEN)
    # Every application ever made to this job; kept by the apply service (F()+1
    # under the job's row lock) so lists never count per row.
    applications_count = models.PositiveIntegerField(default=0)
    accepted_count = models.PositiveSmallIntegerField(default=0)

    objects = models.Manager.from_queryset(JobQuerySet)()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The default list: newest first, and the same among open jobs.
            models.Index(fields=["-created_at", "-id"], name="job_newest"),
            models.Index(
                fields=["-created_at", "-id"], name="job_open_newest", condition=Q(status="open")
            ),
            models.Index(fields=["status", "-created_at"], name="job_status_newest"),
            models.Index(fields=["category", "-created_at"], name="job_category_newest"),
            models.Index(fields=["city", "-created_at"], name="job_city_newest"),
            models.Index(fields=["rate"], name="job_rate"),
            models.Index(fields=["client", "-created_at"], name="job_client_newest"),
            models.Index(fields=["start_at"], name="job_start_at"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(rate__gt=0), name="job_rate_positive"),
            models.CheckConstraint(condition=Q(workers_needed__gte=1), name="job_workers_needed_min"),
            models.CheckConstraint(condition=Q(end_at__gt=models.F("start_at")), name="job_ends_after_start"),
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="job_status_valid"),
            models.CheckConstraint(
                condition=Q(accepted_count__lte=models.F("workers_needed")), name="job_not_overfilled"
            ),
        ]

    def __str__(self):
        return self.title


class ApplicationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


class ApplicationQuerySet(models.QuerySet):
    def for_list(self):
        """Application rows with job and worker: 1 query."""
        return self.select_related("job", "worker")

    def visible_to(self, user):
        """A worker's own applications and those to a client's jobs."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(Q(worker=user) | Q(job__client=user))


class Application(TimeStampedModel):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="applications")
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="applications")
    status = models.CharField(max_length=10, choices=ApplicationStatus.choices, default=ApplicationStatus.PENDING)
    cover_note = models.TextField(max_length=2000, blank=True)

    objects = models.Manager.from_queryset(ApplicationQuerySet)()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["worker", "status", "-created_at"], name="app_worker_status_newest"),
            models.Index(fields=["worker", "-created_at"], name="app_worker_newest"),
            models.Index(fields=["job", "status"], name="app_job_status"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["job", "worker"], name="app_one_per_job_worker"),
            models.CheckConstraint(condition=Q(status__in=ApplicationStatus.values), name="app_status_valid"),
        ]

    def __str__(self):
        return f"Application {self.pk} ({self.status})"


class SavedJobQuerySet(models.QuerySet):
    def for_list(self):
        """A user's saved jobs, newest saved first, with the job's list shape."""
        return self.select_related("job__category", "job__client").prefetch_related("job__skills")


class SavedJob(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_jobs")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="saved_by")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = models.Manager.from_queryset(SavedJobQuerySet)()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="saved_user_newest")]
        constraints = [models.UniqueConstraint(fields=["user", "job"], name="saved_one_per_user_job")]

    def __str__(self):
        return f"{self.user_id} saved {self.job_id}"
