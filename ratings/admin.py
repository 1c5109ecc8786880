"""Admin for reviews (moderation). Adding a review is ``review_create``, the API's
service (``core.admin_services``): only for a completed job, between its client
and an accepted worker, once per direction; a refusal is a form error. A review's
rating is part of the reviewed user's denormalised ``rating_sum`` /
``rating_count``: when the admin edits or deletes a review, those are recounted
from the rows, under the same user row lock the ratings service takes."""
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Sum

from accounts.cache import user_scope
from core.admin_services import ServiceAdminMixin, ServiceModelForm
from core.cache import bump

from .models import Review
from .services import review_create


def lock_reviewed(user_ids) -> list[int]:
    """Lock the reviewed users' rows (id order; NO KEY UPDATE as the ratings
    service does, so review foreign-key checks are not blocked)."""
    User = get_user_model()
    return list(
        User.objects.select_for_update(no_key=True).filter(pk__in=set(user_ids)).order_by("pk").values_list("pk", flat=True)
    )


def recount_ratings(user_ids: list[int]) -> None:
    """Set the locked users' rating counters from the reviews they received;
    ``update()`` sends no signal, so bump their scopes (on commit)."""
    User = get_user_model()
    for pk in user_ids:
        totals = Review.objects.filter(reviewed_id=pk).aggregate(total=Sum("rating"), count=Count("pk"))
        User.objects.filter(pk=pk).update(rating_sum=totals["total"] or 0, rating_count=totals["count"])
        bump(user_scope(pk))


class ReviewAdminForm(ServiceModelForm):
    class Meta:
        model = Review
        fields = "__all__"

    def run_service(self):
        if not self.instance._state.adding:
            return None  # moderation of rating and comment: recounted in save_model
        data = self.cleaned_data
        return review_create(
            reviewer=data["reviewer"], job=data["job"].pk, reviewed=data["reviewed"].pk,
            rating=data["rating"], comment=data.get("comment", ""),
        )


@admin.register(Review)
class ReviewAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = ReviewAdminForm
    # Newest first by the primary key's index: -created_at is indexed only per user.
    ordering = ("-id",)
    list_display = ("id", "job", "reviewer", "reviewed", "rating", "created_at")
    list_select_related = ("job", "reviewer", "reviewed")
    list_filter = ("rating",)
    search_fields = ("job__title", "reviewer__email", "reviewed__email", "comment")
    autocomplete_fields = ("job", "reviewer", "reviewed")
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        fixed = ("created_at", "updated_at")
        # Who reviewed whom for which job is fixed once written (one per direction).
        return fixed if obj is None else (*fixed, "job", "reviewer", "reviewed")

    # The admin's views already run in a transaction: the locks hold until it ends.
    def save_model(self, request, obj, form, change):
        if getattr(form, "written_by_service", False):
            return  # review_create wrote it and counted the rating
        users = lock_reviewed([obj.reviewed_id])
        super().save_model(request, obj, form, change)
        recount_ratings(users)

    def delete_model(self, request, obj):
        users = lock_reviewed([obj.reviewed_id])
        super().delete_model(request, obj)
        recount_ratings(users)

    def delete_queryset(self, request, queryset):
        # The "delete selected" action runs outside the admin's transaction.
        with transaction.atomic():
            users = lock_reviewed(queryset.values_list("reviewed_id", flat=True))
            super().delete_queryset(request, queryset)
            recount_ratings(users)
