"""Cache scopes of the ratings app.

Coarse scopes: ``reviews`` (the global ``/reviews/`` list, filterable: bumped by
any review change), ``reviews:received:<id>`` and ``reviews:given:<id>`` (the
per-user lists ``/users/<id>/reviews/`` and ``/users/<id>/reviews-given/``,
bumped only by a change to a review about / by that user).

Row scopes (docs/cache.md, "Coarse scopes and row scopes"): review lists embed the job (id, title,
status) and both users (names, rating): they name ``job:<job_id>``,
``user:<reviewer_id>`` and ``user:<reviewed_id>`` of every review shown.

A review also changes the reviewed user's rating: the review service updates the
User row with ``update()`` (no signal) and bumps ``user:<id>`` itself
(ratings/services.py); that retires the entries showing that user only."""
from core.cache import page_rows
from core.signals import track

from .models import Review

REVIEWS = "reviews"
ROW_COLUMNS = (("job", "job_id"), ("user", "reviewer_id"), ("user", "reviewed_id"))


def received_scope(user_id) -> str:
    return f"reviews:received:{user_id}"


def given_scope(user_id) -> str:
    return f"reviews:given:{user_id}"


def review_scopes(review: Review):
    return [REVIEWS, received_scope(review.reviewed_id), given_scope(review.reviewer_id)]


def review_list_scopes(view, request, **kwargs):
    return [REVIEWS]


def review_list_rows(view, request, **kwargs):
    """The page's jobs and users, with the view's filters (invalid ones: no rows,
    the build answers the 400)."""
    from .serializers import ReviewListQuerySerializer

    query = ReviewListQuerySerializer(data=request.query_params)
    if not query.is_valid():
        return []
    return page_rows(view, Review.objects.matching(**query.validated_data).for_list(), *ROW_COLUMNS)


def user_review_list_scopes(view, request, pk=None, **kwargs):
    """``view.selector`` is ``received_by`` or ``given_by``. A list of an id
    without a user is cached (empty); the bulk writer (seed), which gives ids
    reviews without a review save, bumps both scopes of every user it creates."""
    return [received_scope(pk) if view.selector == "received_by" else given_scope(pk)]


def user_review_list_rows(view, request, pk=None, **kwargs):
    return page_rows(view, getattr(Review.objects, view.selector)(pk).for_list(), *ROW_COLUMNS)


track(Review, review_scopes)
