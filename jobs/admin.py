"""Admin for categories, jobs (applications shown read-only inline), applications
and saved jobs. Foreign keys use autocomplete (no dropdown of 100k jobs or 10k
users); lists join what they show with ``list_select_related`` and skip the
unfiltered full count on the big tables.

Admin writes obey the rules of ``jobs.services``, through the services
themselves (``core.admin_services``): adding or editing a job is ``job_create`` /
``job_update`` (a job starts in the future, terms frozen after an acceptance,
never open and full), adding an application is ``application_create``; state
changes are admin actions (cancel a job; accept or reject an application) that
run the API's services under the same locks. A refused rule, or a race lost to
another writer, is a form error or an error message, never a 500. Status and
counters are read-only. A job is cancelled, never deleted (its hires, payments
and reviews stand on it). An application that is not a hire may be deleted (spam):
that recounts its job's counters from the rows and keeps an open or filled job's
status true to them; a hire (accepted, hire_cancelled) is not deleted, as the
services never withdraw or reject one: the way out is cancelling the job."""
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q

from core.admin_services import KeepCountedRowsMixin, ServiceAdminMixin, ServiceModelForm, run_service_action
from core.cache import bump

from . import services
from .cache import job_scopes
from .models import Application, ApplicationStatus, Category, Job, JobStatus, SavedJob


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


class JobAdminForm(ServiceModelForm):
    class Meta:
        model = Job
        fields = "__all__"

    def run_service(self):
        names = [*services.EDITABLE_FIELDS, "skills"]
        if self.instance._state.adding:
            data = {name: self.cleaned_data[name] for name in names if name in self.cleaned_data}
            return services.job_create(client=self.cleaned_data["client"], data=data)
        data = {name: self.cleaned_data[name] for name in self.changed_data if name in names}
        return services.job_update(job=self.instance, by=self.request.user, data=data)


@admin.register(Job)
class JobAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = JobAdminForm
    list_display = (
        "id", "title", "client", "category", "city", "rate", "currency", "status",
        "workers_needed", "accepted_count", "applications_count", "start_at", "created_at",
    )
    list_select_related = ("client", "category")
    list_filter = ("status", "currency", "category")
    search_fields = ("title", "city", "client__email")
    autocomplete_fields = ("client", "category", "skills")
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = (ApplicationInline,)
    actions = ("cancel_jobs",)

    def has_delete_permission(self, request, obj=None):
        return False  # cancel instead (the API's DELETE cancels too)

    def get_readonly_fields(self, request, obj=None):
        fixed = ("status", "applications_count", "accepted_count", "created_at", "updated_at")
        # A job stays with the client who posted it (its payments and reviews name them).
        return fixed if obj is None else (*fixed, "client")

    @admin.action(description="Cancel the selected jobs (closes their applications)")
    def cancel_jobs(self, request, queryset):
        run_service_action(
            self, request, queryset, lambda job, user: services.job_cancel(job=job, by=user), "job(s) cancelled"
        )


# Applications counted as hires (``accepted_count``): they are not deleted.
HIRED = (ApplicationStatus.ACCEPTED, ApplicationStatus.HIRE_CANCELLED)
HIRE_KEPT = "a hire stands (counted on its job, paid and reviewed on it): cancel the job instead."


def lock_jobs(job_ids) -> list[Job]:
    """Lock the jobs, in id order, before touching their applications: the order
    the jobs services lock in (job first), so admin and API never deadlock."""
    return list(Job.objects.select_for_update().filter(pk__in=set(job_ids)).order_by("pk"))


def recount_jobs(jobs: list[Job]) -> None:
    """Set the locked jobs' counters from their application rows, and an open or
    filled job's status from them (open means there is room: never open and full).
    ``update()`` sends no signal: bump the jobs' scopes (on commit)."""
    for job in jobs:
        # A cancelled job's hires are ``hire_cancelled`` and still counted (the
        # cancel service leaves ``accepted_count`` as it was).
        counts = Application.objects.filter(job_id=job.pk).aggregate(
            total=Count("pk"), accepted=Count("pk", filter=Q(status__in=HIRED))
        )
        status = job.status
        if status in (JobStatus.OPEN, JobStatus.FILLED):
            status = JobStatus.FILLED if counts["accepted"] >= job.workers_needed else JobStatus.OPEN
        Job.objects.filter(pk=job.pk).update(
            applications_count=counts["total"], accepted_count=counts["accepted"], status=status
        )
        bump(*job_scopes(job))


class ApplicationAdminForm(ServiceModelForm):
    class Meta:
        model = Application
        fields = "__all__"  # noqa: DJ007 - the admin edits every field; clean() checks them together

    def run_service(self):
        if not self.instance._state.adding:
            return None  # only the cover note is editable: no rule behind it
        return services.application_create(
            job=self.cleaned_data["job"],
            worker=self.cleaned_data["worker"],
            cover_note=self.cleaned_data.get("cover_note", ""),
        )


@admin.register(Application)
class ApplicationAdmin(KeepCountedRowsMixin, ServiceAdminMixin, admin.ModelAdmin):
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
    actions = ("accept_applications", "reject_applications")

    def get_readonly_fields(self, request, obj=None):
        # The status moves only through the actions (the services' rules).
        fixed = ("status", "created_at", "updated_at")
        # An application stays on its job and worker (one per pair, counted on the job).
        return fixed if obj is None else (*fixed, "job", "worker")

    @admin.action(description="Accept the selected applications")
    def accept_applications(self, request, queryset):
        run_service_action(
            self, request, queryset,
            lambda app, user: services.application_accept(application=app, by=user), "application(s) accepted",
        )

    @admin.action(description="Reject the selected applications")
    def reject_applications(self, request, queryset):
        run_service_action(
            self, request, queryset,
            lambda app, user: services.application_reject(application=app, by=user), "application(s) rejected",
        )

    def kept_reason(self, obj):
        return HIRE_KEPT if obj.status in HIRED else None

    @staticmethod
    def _refuse_hires(queryset) -> None:
        """Under the jobs' locks: an application accepted since the delete page
        checked it is refused after all (a 403, nothing deleted)."""
        hire = queryset.filter(status__in=HIRED).first()
        if hire is not None:
            raise PermissionDenied(f"{hire}: {HIRE_KEPT}")

    # The admin's views already run in a transaction: the locks hold until it ends.
    def delete_model(self, request, obj):
        jobs = lock_jobs([obj.job_id])
        self._refuse_hires(Application.objects.filter(pk=obj.pk))
        super().delete_model(request, obj)
        recount_jobs(jobs)

    def delete_queryset(self, request, queryset):
        # The "delete selected" action runs outside the admin's transaction.
        with transaction.atomic():
            jobs = lock_jobs(queryset.values_list("job_id", flat=True))
            self._refuse_hires(queryset)
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
