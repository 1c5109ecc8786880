"""Cache scopes of the ratings app: ``reviews`` (every review list, bumped by any
review change). Review lists embed the job (id, title, status) and both users
(names, rating), so they also depend on ``jobs`` and ``users``.

A review also changes the reviewed user's rating: the review service updates the
User row with ``update()`` (no signal) and bumps ``user:<id>`` and ``users``
itself (ratings/services.py)."""
from accounts.cache import USERS
from core.signals import track
from jobs.cache import JOBS

from .models import Review

REVIEWS = "reviews"


def review_scopes(review: Review):
    return [REVIEWS]


def review_list_scopes(view, request, **kwargs):
    return [REVIEWS, USERS, JOBS]


track(Review, review_scopes)
