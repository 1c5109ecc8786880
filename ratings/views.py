"""Review endpoints (docs/API.md): thin views over ``ReviewQuerySet`` and
``ratings.services``. Review lists are public, the same for everyone, and cached
once for all callers (``private=False``); only POST is throttled (``reviews``)."""
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from accounts.models import User
from core.cache import Rows, cached_response
from core.representation import json_accepted, view_page_values
from core.throttling import UserScopedThrottle

from . import services
from .cache import REVIEWS, given_scope, received_scope
from .filters import ReviewFilter
from .models import Review
from .serializers import REVIEW_VALUE_COLUMNS, ReviewCreateSerializer, ReviewSerializer, review_value_rows


def _review_page(view, request, queryset) -> Response:
    if json_accepted(request):
        # JSON: the serializer's bytes from plain row values, without model instances
        # or its per-field machinery (core/representation.py).
        page = view.paginate_queryset(view_page_values(view, queryset, *REVIEW_VALUE_COLUMNS))
        return view.get_paginated_response(review_value_rows(page))
    return view.get_paginated_response(ReviewSerializer(view.paginate_queryset(queryset), many=True).data)

# --- what each cached GET depends on --------------------------------------------


def review_list_scopes(view, request, **kwargs):
    return [REVIEWS]


def user_review_list_scopes(view, request, pk=None, **kwargs):
    """``view.selector`` is ``received_by`` or ``given_by``. An id without a user
    is a 404 (nothing cached); the bulk writer (seed), which gives users reviews
    without a review save, bumps both scopes of every user it creates."""
    return [received_scope(pk) if view.selector == "received_by" else given_scope(pk)]


# Review lists embed the job (id, title, status) and both users (names, rating).
# Who reviewed whom for which job is fixed once written, and a list's rows and order
# change only with its coarse scope: the ids query is recalled (Rows.remembered).
REVIEW_ROWS = Rows(("job", "job_id"), ("user", "reviewer_id"), ("user", "reviewed_id"), recall=True)

FILTER_PARAMS = [
    OpenApiParameter("reviewed", int, description="Reviews about this user id."),
    OpenApiParameter("reviewer", int, description="Reviews written by this user id."),
    OpenApiParameter("job", int, description="Reviews of this job id."),
]


class ReviewViewSet(viewsets.GenericViewSet):
    """Reviews: anyone reads them (newest first, filterable); signed-in users who
    took part in a completed job review the other side."""

    serializer_class = ReviewSerializer
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    throttle_scope = "reviews"
    filterset_class = ReviewFilter
    queryset = Review.objects.none()  # schema generation only
    # The list's queryset is the same for every caller (filters aside): its reads
    # are compiled once when no filter is given (core/representation.py, static_queryset).
    static_queryset_for = ("list",)
    # The input serializer of ``create``; a test swaps it to prove the database's own checks.
    create_serializer_class = ReviewCreateSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Review.objects.none()
        return Review.objects.for_list()

    def get_throttles(self):
        # Only writes are rate-limited: public lists are cheap and cached.
        return [UserScopedThrottle()] if self.request.method == "POST" else []

    @extend_schema(parameters=FILTER_PARAMS, responses=ReviewSerializer(many=True))
    @cached_response(review_list_scopes, rows=REVIEW_ROWS, private=False)
    def list(self, request):
        """Anyone. Newest first; an invalid filter value is a 400."""
        # Budget (MISS): 3 queries (ids, COUNT, page) + token when sent.
        return _review_page(self, request, self.filter_queryset(self.get_queryset()))

    @extend_schema(
        request=ReviewCreateSerializer,
        responses={
            201: ReviewSerializer,
            409: OpenApiResponse(description="Conflict: this job was already reviewed in this direction."),
        },
    )
    def create(self, request):
        """The client and an accepted worker of a completed job review each other,
        once per job and direction. ``400`` a rating outside 1-5, or ``reviewed`` is
        not the other side of a completed job; ``403`` the caller took no part in
        the job; ``409`` the second review of the same job and direction."""
        serializer = self.create_serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        review = services.review_create(reviewer=request.user, **serializer.validated_data)
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)


class _UserReviewListView(GenericAPIView):
    """A user's reviews, newest first. Anyone may read them; an id without a user
    is a 404."""

    # Base of the per-user review lists. Budget (MISS): 3 queries (ids, COUNT, page)
    # + token when sent; an empty list costs one more, to tell a user without reviews
    # from an id without a user (a 404: nothing is stored, no counter stays behind,
    # so enumerating ids cannot grow the cache).

    serializer_class = ReviewSerializer
    permission_classes = [permissions.AllowAny]
    filter_backends: list = []  # no query-string filters on these lists
    queryset = Review.objects.none()  # schema generation only
    # The ReviewQuerySet method that picks this list's rows for a user id.
    selector = "received_by"
    # get_queryset() depends on the URL's id alone: its reads are compiled once
    # (core/representation.py, static_queryset).
    static_queryset_for = ("get",)

    @extend_schema(responses=ReviewSerializer(many=True))
    @cached_response(user_review_list_scopes, rows=REVIEW_ROWS, private=False)
    def get(self, request, pk):
        response = _review_page(self, request, self.filter_queryset(self.get_queryset()))
        if self.paginator.page.paginator.count == 0 and not User.objects.filter(pk=pk).exists():
            raise NotFound("No user with this id.")
        return response

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Review.objects.none()
        return getattr(Review.objects, self.selector)(self.kwargs["pk"]).for_list()


class UserReviewsReceivedView(_UserReviewListView):
    """Reviews written about the user, newest first. Anyone may read them; an id
    without a user is a 404."""

    selector = "received_by"


class UserReviewsGivenView(_UserReviewListView):
    """Reviews the user wrote, newest first. Anyone may read them; an id without a
    user is a 404."""

    selector = "given_by"
