"""The baselines Shiftboard is measured against: what a team would otherwise ship.

(a) naive: DRF ``ReadOnlyModelViewSet``s with nested ``ModelSerializer``s straight
    from the models, no ``select_related``/``prefetch_related``, no cache;
(b) tuned: the same serializers and views, with ``select_related`` /
    ``prefetch_related`` done right, no cache;
(c) cachalot: (a) with django-cachalot (mounted under /bench/cachalot/, where the
    bench middleware leaves cachalot on).

They return the same fields as Shiftboard's representations (docs/API.md), paginated
with DRF's ``PageNumberPagination`` (20 a page) and rendered by DRF's plain
``JSONRenderer``. Writes are not duplicated here: the mix sends every variant's
writes to Shiftboard's own write endpoints, so the variants differ only in reads.
"""
from django.db.models import Q
from django.http import Http404
from rest_framework import serializers, viewsets
from rest_framework.authentication import TokenAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import NotAuthenticated
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer

from accounts.models import Profile, User
from jobs.models import Category, Job, SavedJob
from payments.models import Payment
from ratings.models import Review

# --- serializers (shared by every baseline) --------------------------------------

class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["id", "name", "slug"]


class UserLiteSerializer(serializers.ModelSerializer):
    rating_avg = serializers.DecimalField(max_digits=3, decimal_places=2, read_only=True, allow_null=True)

    class Meta:
        model = User
        fields = ["id", "first_name", "last_name", "rating_avg"]


class JobRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = ["id", "title", "status"]


class JobSerializer(serializers.ModelSerializer):
    category = CategorySerializer(read_only=True)
    skills = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    client = UserLiteSerializer(read_only=True)

    class Meta:
        model = Job
        fields = [
            "id", "title", "description", "category", "skills", "client", "city", "rate",
            "currency", "workers_needed", "accepted_count", "start_at", "end_at", "status", "applications_count",
            "created_at", "updated_at",
        ]


class ProfileSerializer(serializers.ModelSerializer):
    skills = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Profile
        fields = ["bio", "city", "skills", "hourly_rate"]


class PublicUserSerializer(serializers.ModelSerializer):
    profile = ProfileSerializer(read_only=True)
    rating_avg = serializers.DecimalField(max_digits=3, decimal_places=2, read_only=True, allow_null=True)

    class Meta:
        model = User
        fields = ["id", "first_name", "last_name", "role", "profile", "rating_avg", "rating_count",
                  "completed_jobs"]


class ReviewSerializer(serializers.ModelSerializer):
    job = JobRefSerializer(read_only=True)
    reviewer = UserLiteSerializer(read_only=True)
    reviewed = UserLiteSerializer(read_only=True)

    class Meta:
        model = Review
        fields = ["id", "job", "reviewer", "reviewed", "rating", "comment", "created_at"]


class PaymentSerializer(serializers.ModelSerializer):
    job = JobRefSerializer(read_only=True)
    payer = UserLiteSerializer(read_only=True)
    recipient = UserLiteSerializer(read_only=True)

    class Meta:
        model = Payment
        fields = ["id", "job", "payer", "recipient", "amount", "currency", "status", "reference",
                  "created_at"]


class SavedJobSerializer(serializers.ModelSerializer):
    """A saved job: the Job representation plus when it was saved (as Shiftboard's)."""

    def to_representation(self, instance):
        data = JobSerializer(instance.job, context=self.context).data
        data["saved_at"] = serializers.DateTimeField().to_representation(instance.created_at)
        return data

    class Meta:
        model = SavedJob
        fields = ["id"]


# --- views -------------------------------------------------------------------

class BaselinePagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "per_page"
    max_page_size = 100


class BaselineViewSetMixin:
    """Plain DRF: JSON, token auth, page-number pagination; nothing of Shiftboard's
    envelope, cache or throttles."""

    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    authentication_classes = [TokenAuthentication]
    permission_classes = [AllowAny]
    pagination_class = BaselinePagination
    filter_backends: list = []


class NaiveJobViewSet(BaselineViewSetMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = JobSerializer

    def get_queryset(self):
        return Job.objects.order_by("-created_at", "-id")


class NaiveUserViewSet(BaselineViewSetMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = PublicUserSerializer

    def get_queryset(self):
        return User.objects.filter(is_active=True)

    # Querysets of the nested lists: the naive ones, overridden in the tuned views.
    def reviews_queryset(self, user_id):
        return Review.objects.filter(reviewed_id=user_id).order_by("-created_at", "-id")

    def payments_queryset(self, user_id):
        return Payment.objects.filter(Q(payer_id=user_id) | Q(recipient_id=user_id)).order_by(
            "-created_at", "-id"
        )

    def saved_jobs_queryset(self, user):
        return SavedJob.objects.filter(user=user).order_by("-created_at", "-id")

    def _paginated(self, queryset, serializer_class):
        page = self.paginate_queryset(queryset)
        data = serializer_class(page, many=True, context=self.get_serializer_context()).data
        return self.get_paginated_response(data)

    @action(detail=True)
    def reviews(self, request, pk=None):
        user = self.get_object()
        return self._paginated(self.reviews_queryset(user.pk), ReviewSerializer)

    @action(detail=True)
    def payments(self, request, pk=None):
        user = self.get_object()
        me = request.user
        if not me.is_authenticated or (me.pk != user.pk and not me.is_staff):
            raise Http404
        return self._paginated(self.payments_queryset(user.pk), PaymentSerializer)

    @action(detail=False, url_path="me/saved-jobs")
    def saved_jobs(self, request):
        if not request.user.is_authenticated:
            raise NotAuthenticated()
        return self._paginated(self.saved_jobs_queryset(request.user), SavedJobSerializer)


class TunedJobViewSet(NaiveJobViewSet):
    def get_queryset(self):
        return super().get_queryset().select_related("category", "client").prefetch_related("skills")


class TunedUserViewSet(NaiveUserViewSet):
    def get_queryset(self):
        if self.action == "retrieve":
            return super().get_queryset().select_related("profile").prefetch_related("profile__skills")
        return super().get_queryset()  # the nested lists need only the user's row

    def reviews_queryset(self, user_id):
        return super().reviews_queryset(user_id).select_related("job", "reviewer", "reviewed")

    def payments_queryset(self, user_id):
        return super().payments_queryset(user_id).select_related("job", "payer", "recipient")

    def saved_jobs_queryset(self, user):
        return (
            super()
            .saved_jobs_queryset(user)
            .select_related("job__category", "job__client")
            .prefetch_related("job__skills")
        )
