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
from core.signals import track

from .models import Review

REVIEWS = "reviews"


def received_scope(user_id) -> str:
    return f"reviews:received:{user_id}"


def given_scope(user_id) -> str:
    return f"reviews:given:{user_id}"


def review_scopes(review: Review):
    return [REVIEWS, received_scope(review.reviewed_id), given_scope(review.reviewer_id)]


track(Review, review_scopes)
