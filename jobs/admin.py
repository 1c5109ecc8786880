"""Admin for categories, jobs (applications shown read-only inline), applications
and saved jobs. Foreign keys use autocomplete (no dropdown of 100k jobs or 10k
users); lists join what they show with ``list_select_related`` and skip the
unfiltered full count on the big tables.

The admin is a raw tool, but it keeps the denormalised counters true: a job's
``applications_count`` / ``accepted_count`` are read-only and recounted from the
rows whenever the admin adds, edits or deletes an application. Lifecycle moves
(fill, start, complete, and the ``completed_jobs`` counters completion keeps) go
through the API, so a job's status is read-only here."""
from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import Count, Q

from core.cache import bump

from .cache import job_scopes
from .models import Application, ApplicationStatus, Category, Job, SavedJob


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


class ApplicationInline(admin.TabularInline):
    """The job's applications, read-only (edit one through its change link)."""

    model = Application
    fields = ("worker", "status", "cover_note", "created_at")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request):
        # The worker column would otherwise load each worker on its own.
        return super().get_queryset(request).select_related("worker")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = (
        "id", "title", "client", "category", "city", "rate", "currency", "status",
        "workers_needed", "accepted_count", "applications_count", "start_at", "created_at",
    )
    list_select_related = ("client", "category")
    list_filter = ("status", "currency", "category")
    search_fields = ("title", "city", "client__email")
    autocomplete_fields = ("client", "category", "skills")
    readonly_fields = ("status", "applications_count", "accepted_count", "created_at", "updated_at")
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = (ApplicationInline,)


def lock_jobs(job_ids) -> list[Job]:
    """Lock the jobs, in id order, before touching their applications: the order
    the jobs services lock in (job first), so admin and API never deadlock."""
    return list(Job.objects.select_for_update().filter(pk__in=set(job_ids)).order_by("pk"))


def recount_jobs(jobs: list[Job]) -> None:
    """Set the locked jobs' counters from their application rows. ``update()``
    sends no signal: bump the jobs' scopes (on commit)."""
    for job in jobs:
        counts = Application.objects.filter(job_id=job.pk).aggregate(
            total=Count("pk"), accepted=Count("pk", filter=Q(status=ApplicationStatus.ACCEPTED))
        )
        Job.objects.filter(pk=job.pk).update(applications_count=counts["total"], accepted_count=counts["accepted"])
        bump(*job_scopes(job))


class ApplicationAdminForm(forms.ModelForm):
    class Meta:
        model = Application
        fields = "__all__"  # noqa: DJ007 - the admin edits every field; clean() checks them together

    def clean(self):
        cleaned = super().clean()
        job = cleaned.get("job") or getattr(self.instance, "job", None)
        if job is not None and cleaned.get("status") == ApplicationStatus.ACCEPTED:
            others = job.applications.filter(status=ApplicationStatus.ACCEPTED).exclude(pk=self.instance.pk)
            if others.count() >= job.workers_needed:
                raise forms.ValidationError(f"This job already has its {job.workers_needed} accepted worker(s).")
        return cleaned


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    form = ApplicationAdminForm
    # Newest first by the primary key's index: the model's -created_at has no
    # index of its own on this table (a sort of every row per page otherwise).
    ordering = ("-id",)
    list_display = ("id", "job", "worker", "status", "created_at")
    list_select_related = ("job", "worker")
    list_filter = ("status",)
    search_fields = ("job__title", "worker__email")
    autocomplete_fields = ("job", "worker")
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        fixed = ("created_at", "updated_at")
        # An application stays on its job and worker (one per pair, counted on the job).
        return fixed if obj is None else (*fixed, "job", "worker")

    # The admin's views already run in a transaction: the locks hold until it ends.
    def save_model(self, request, obj, form, change):
        jobs = lock_jobs([obj.job_id])
        super().save_model(request, obj, form, change)
        recount_jobs(jobs)

    def delete_model(self, request, obj):
        jobs = lock_jobs([obj.job_id])
        super().delete_model(request, obj)
        recount_jobs(jobs)

    def delete_queryset(self, request, queryset):
        # The "delete selected" action runs outside the admin's transaction.
        with transaction.atomic():
            jobs = lock_jobs(queryset.values_list("job_id", flat=True))
            super().delete_queryset(request, queryset)
            recount_jobs(jobs)


@admin.register(SavedJob)
class SavedJobAdmin(admin.ModelAdmin):
    ordering = ("-id",)  # the primary key's index (see ApplicationAdmin)
    list_display = ("id", "user", "job", "created_at")
    list_select_related = ("user", "job")
    search_fields = ("user__email", "job__title")
    autocomplete_fields = ("user", "job")
    readonly_fields = ("created_at",)
    show_full_result_count = False
