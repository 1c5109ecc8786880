"""Cache scopes of the ratings app: ``reviews`` (every review list). A review
also changes the reviewed user's rating: that goes through the User row, whose
save bumps ``user:<id>`` and ``users`` (accounts/cache.py)."""
from accounts.cache import USERS
from core.signals import track

from .models import Review

REVIEWS = "reviews"


def review_scopes(review: Review):
    return [REVIEWS]


def review_list_scopes(view, request, **kwargs):
    return [REVIEWS, USERS]


track(Review, review_scopes)
