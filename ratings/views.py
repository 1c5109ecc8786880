"""Review endpoints (API.md): thin views over ``ReviewQuerySet`` and
``ratings.services``. Review lists are public, the same for everyone, and cached
once for all callers (``private=False``); only POST is throttled (``reviews``)."""
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.cache import cached_response
from core.throttling import UserScopedThrottle

from . import services
from .cache import review_list_rows, review_list_scopes, user_review_list_rows, user_review_list_scopes
from .models import Review
from .serializers import ReviewCreateSerializer, ReviewListQuerySerializer, ReviewSerializer

FILTER_PARAMS = [
    OpenApiParameter("reviewed", int, description="Reviews about this user id."),
    OpenApiParameter("reviewer", int, description="Reviews written by this user id."),
    OpenApiParameter("job", int, description="Reviews of this job id."),
]


class ReviewViewSet(viewsets.GenericViewSet):
    """``/reviews/``: every review (filterable), newest first; POST writes one."""

    serializer_class = ReviewSerializer
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    throttle_scope = "reviews"
    queryset = Review.objects.none()  # schema generation only
    # The input serializer of ``create``; a test swaps it to prove the database's own checks.
    create_serializer_class = ReviewCreateSerializer

    def get_throttles(self):
        # Only writes are rate-limited: public lists are cheap and cached.
        return [UserScopedThrottle()] if self.request.method == "POST" else []

    @extend_schema(parameters=FILTER_PARAMS, responses=ReviewSerializer(many=True))
    @cached_response(review_list_scopes, rows=review_list_rows, private=False)
    def list(self, request):
        """Invalid filter values are a 400. Budget (MISS): 3 queries (ids, COUNT, page) + token when sent."""
        query = ReviewListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        queryset = Review.objects.matching(**query.validated_data).for_list()
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(ReviewSerializer(page, many=True).data)

    @extend_schema(request=ReviewCreateSerializer, responses={201: ReviewSerializer})
    def create(self, request):
        """``201`` the review; ``400`` bad rating or not the other side of a completed
        job; ``403`` the caller took no part in the job; ``409`` second review of the
        same job and direction."""
        serializer = self.create_serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        review = services.review_create(reviewer=request.user, **serializer.validated_data)
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)


class _UserReviewListView(GenericAPIView):
    """Base of the per-user review lists: public, newest first. An id without a user
    is an empty list (no extra query to tell the two apart). Budget (MISS): 3
    queries (ids, COUNT, page) + token when sent."""

    serializer_class = ReviewSerializer
    permission_classes = [permissions.AllowAny]
    queryset = Review.objects.none()  # schema generation only
    # The ReviewQuerySet method that picks this list's rows for a user id.
    selector = "received_by"

    @extend_schema(responses=ReviewSerializer(many=True))
    @cached_response(user_review_list_scopes, rows=user_review_list_rows, private=False)
    def get(self, request, pk):
        reviews = getattr(Review.objects, self.selector)(pk)
        page = self.paginate_queryset(reviews.for_list())
        return self.get_paginated_response(ReviewSerializer(page, many=True).data)


class UserReviewsReceivedView(_UserReviewListView):
    """``/users/{id}/reviews/``: reviews written about the user."""

    selector = "received_by"


class UserReviewsGivenView(_UserReviewListView):
    """``/users/{id}/reviews-given/``: reviews the user wrote."""

    selector = "given_by"
