"""EnvelopePagination's capped COUNT (core/envelope.py): exact below the cap, the
cap and ``total_items_capped: true`` above it, and the COUNT is a LIMITed subquery
whatever the table size."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import path
from rest_framework import serializers
from rest_framework.generics import ListAPIView

from core.envelope import EnvelopePagination
from jobs.models import Category
from tests.jobs.factories import CategoryFactory


class CategoryRowSerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["id", "slug"]


class CappedAtFive(EnvelopePagination):
    count_cap = 5


class CategoryPageView(ListAPIView):
    authentication_classes = []
    permission_classes = []
    serializer_class = CategoryRowSerializer
    pagination_class = CappedAtFive
    filter_backends = []

    def get_queryset(self):
        return Category.objects.order_by("id")


urlpatterns = [path("categories/", CategoryPageView.as_view())]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def test_below_the_cap_the_total_is_exact_and_not_flagged(anon):
    CategoryFactory.create_batch(5)
    body = anon.get("/categories/?per_page=2").json()
    assert body["pagination"] == {
        "page": 1, "per_page": 2, "total_items": 5, "total_pages": 3, "has_next": True, "has_prev": False,
    }


def test_above_the_cap_the_total_is_the_cap_and_flagged(anon):
    CategoryFactory.create_batch(8)
    body = anon.get("/categories/?per_page=2&page=3").json()
    assert body["pagination"] == {
        "page": 3, "per_page": 2, "total_items": 5, "total_pages": 3,
        "has_next": False, "has_prev": True, "total_items_capped": True,
    }
    assert len(body["data"]) == 1  # row 5 of 8: the list stops at the cap
    assert anon.get("/categories/?per_page=2&page=4").status_code == 404


def test_the_count_reads_at_most_cap_plus_one_keys(anon):
    CategoryFactory.create_batch(8)
    with CaptureQueriesContext(connection) as queries:
        anon.get("/categories/?per_page=2")
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1
    sql = counts[0].upper()
    assert "LIMIT 6" in sql  # cap + 1
    assert "ORDER BY" not in sql  # no sort for a count
    assert '"SLUG"' not in sql  # only the key is selected
