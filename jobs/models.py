"""Categories, jobs (shifts) and applications to them, and saved jobs."""
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper

from core.models import TimeStampedModel


class CategoryQuerySet(models.QuerySet):
    def for_list(self):
        """All categories by name: 1 query (+1 COUNT when paginated)."""
        return self.order_by("name", "id")


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)

    objects = models.Manager.from_queryset(CategoryQuerySet)()

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
        """Job rows with category, client and skills: 1 query + 1 for skills (the
        list's JSON reads its skills with its rows: jobs.serializers.JOB_LIST_COLUMNS).
        The endpoint budgets (plus COUNT, the cache's ids query, the token) are in jobs/views.py."""
        return self.select_related("category", "client").prefetch_related("skills")

    def for_detail(self):
        """Same shape as a list row: 1 query + 1 for skills."""
        return self.for_list()

    def reread(self, job):
        """``job`` read again in the detail shape, after a write: 2 queries."""
        return self.for_detail().get(pk=job.pk)

    def owned_by(self, user):
        """Jobs posted by ``user``."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(client=user)

    def applications_visible_to(self, user):
        """Jobs whose application list ``user`` may read: their own, or every job for staff."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self.all()
        return self.filter(client=user)

    def saved_by(self, user):
        """``user``'s saved jobs in the list shape, newest saved first, with ``saved_at``.
        1 query + 1 for skills; the endpoint's budget is in jobs/views.py."""
        return (
            self.for_list()
            .filter(saved_by__user=user)
            .annotate(saved_at=models.F("saved_by__created_at"))
            .order_by("-saved_at", "-id")
        )

    def open(self):
        """Jobs accepting applications."""
        return self.filter(status=JobStatus.OPEN)


class Job(TimeStampedModel):
    # No single-column index on the FKs below: job_client_newest / job_category_newest
    # lead with them and serve every lookup (explain_plans checks it).
    client = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs", db_index=False
    )
    title = models.CharField(max_length=200)
    description = models.TextField(max_length=10000, blank=True)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="jobs", db_index=False)
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
            # ?city= is case-insensitive (UPPER(city) = UPPER(%s)): only an index on
            # the same expression serves it (a plain city index was scanned in full).
            models.Index(Upper("city"), F("created_at").desc(), F("id").desc(), name="job_city_ci_newest"),
            models.Index(fields=["rate"], name="job_rate"),
            models.Index(fields=["client", "-created_at"], name="job_client_newest"),
            models.Index(fields=["start_at"], name="job_start_at"),
            # Open jobs by start time: the whole-table start_at index read ~40% of the
            # table (every past, closed job) before finding 20 open ones.
            models.Index(fields=["start_at"], name="job_open_start_at", condition=Q(status="open")),
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

    @property
    def scheduled_hours(self) -> Decimal:
        """The shift's scheduled length in hours (end - start)."""
        return Decimal((self.end_at - self.start_at).total_seconds()) / Decimal(3600)

    @property
    def worth_per_worker(self) -> Decimal:
        """What the shift is worth to one worker: rate x scheduled hours, to the
        cent. The most a payment to one worker for this job may be."""
        return (self.rate * self.scheduled_hours).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class ApplicationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    # The job was cancelled while the application was pending: closed undecided.
    CANCELLED = "cancelled", "Cancelled (job cancelled before a decision)"
    # The job was cancelled after this worker had been accepted (hired).
    HIRE_CANCELLED = "hire_cancelled", "Hire cancelled (job cancelled after acceptance)"


class ApplicationQuerySet(models.QuerySet):
    def for_list(self):
        """Application rows with job and worker: 1 query (+1 COUNT when paginated).
        Budget of GET /applications/ and /jobs/{id}/applications/: see the views."""
        return self.select_related("job", "worker")

    def visible_to(self, user):
        """A worker's own applications, or those to a client's jobs. Roles do not mix
        (only workers apply, only clients post), so each role gets one indexed
        condition: an OR across the join to jobs can only be answered by PostgreSQL
        with sequential scans of both tables (measured by ``explain_plans``)."""
        if not user.is_authenticated:
            return self.none()
        if user.is_worker:
            return self.made_by(user)
        return self.to_jobs_of(user)

    def to_jobs_of(self, user):
        """Applications to jobs posted by ``user`` (the ones they may accept or reject)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(job__client=user)

    def made_by(self, user):
        """Applications ``user`` made as a worker (the ones they may withdraw)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(worker=user)

    def for_job(self, job):
        """The applications to one job, newest first."""
        return self.filter(job=job)

    def accepted(self):
        """Accepted applications."""
        return self.filter(status=ApplicationStatus.ACCEPTED)


class Application(TimeStampedModel):
    # Covered by app_one_per_job_worker (job, worker) and app_worker_* (worker, ...).
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="applications", db_index=False)
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="applications", db_index=False
    )
    status = models.CharField(max_length=16, choices=ApplicationStatus.choices, default=ApplicationStatus.PENDING)
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

    def of_user(self, user):
        """Rows saved by ``user``."""
        return self.filter(user=user)


class SavedJob(models.Model):
    # Covered by saved_one_per_user_job (user, job).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_jobs", db_index=False
    )
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="saved_by")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = models.Manager.from_queryset(SavedJobQuerySet)()

    class Meta:
        ordering = ["-created_at", "-id"]
        # The per-user list is served by the user's rows of the (user, job) unique
        # index (a user saves few jobs); a (user, -created_at) index went unused.
        constraints = [models.UniqueConstraint(fields=["user", "job"], name="saved_one_per_user_job")]

    def __str__(self):
        return f"{self.user_id} saved {self.job_id}"
