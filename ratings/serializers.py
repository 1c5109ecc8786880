"""Serializers of the ratings app. ``ReviewSerializer`` reads only the review row
and the rows ``ReviewQuerySet.for_list`` joins: it never queries. The rules of
who may review whom live in ``ratings.services``."""
from rest_framework import serializers

from accounts.serializers import UserLiteSerializer, user_lite_repr
from core.converters import MAX_ID
from core.representation import Row, Rows, datetime_formatter
from jobs.serializers import (
    JOB_AND_USERS_WIDTH,
    JobRefSerializer,
    job_and_users_columns,
    job_and_users_row,
    job_ref_repr,
)

from .models import Review


class ReviewSerializer(serializers.ModelSerializer):
    job = JobRefSerializer(read_only=True)
    reviewer = UserLiteSerializer(read_only=True)
    reviewed = UserLiteSerializer(read_only=True)

    class Meta:
        model = Review
        fields = ["id", "job", "reviewer", "reviewed", "rating", "comment", "created_at"]
        read_only_fields = fields


def review_rows(reviews) -> Rows:
    """``ReviewSerializer(reviews, many=True).data`` for reviews of
    ``ReviewQuerySet.for_list`` (core/representation.py: the same bytes without
    DRF's per-field machinery)."""
    datetime_repr = datetime_formatter()
    return Rows(
        Row(
            id=review.id,
            job=job_ref_repr(review.job),
            reviewer=user_lite_repr(review.reviewer),
            reviewed=user_lite_repr(review.reviewed),
            rating=review.rating,
            comment=review.comment,
            created_at=datetime_repr(review.created_at),
        )
        for review in reviews
    )


# The columns ``review_value_rows`` reads: the review, its job ref and both users.
REVIEW_VALUE_COLUMNS = (*job_and_users_columns("reviewer", "reviewed"), "rating", "comment", "created_at")


def review_value_rows(values) -> Rows:
    """``ReviewSerializer(reviews, many=True).data`` from ``values_list(
    *REVIEW_VALUE_COLUMNS)`` tuples (a page of them): what ``review_rows`` gives,
    without a Review, a Job and two Users per row. The same one query."""
    datetime_repr = datetime_formatter()
    rows = Rows()
    for v in values:
        row = job_and_users_row(v, "reviewer", "reviewed")
        rating, comment, created_at = v[JOB_AND_USERS_WIDTH:]
        row.update(rating=rating, comment=comment, created_at=datetime_repr(created_at))
        rows.append(row)
    return rows


class ReviewCreateSerializer(serializers.Serializer):
    """``job, reviewed, rating (1-5), comment``; the reviewer is the caller."""

    job = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    reviewed = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    rating = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(max_length=2000, allow_blank=True, required=False, default="")


