"""The fast representations (core/representation.py) give exactly the bytes of
the DRF serializers they stand in for: random rows (unicode, control characters,
U+2028/U+2029, nulls, decimals at every size, datetimes with and without
microseconds) rendered both ways and compared byte for byte, row by row and
through every hot endpoint."""
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from rest_framework.renderers import JSONRenderer

from accounts.models import Profile, User
from accounts.serializers import (
    PUBLIC_USER_COLUMNS,
    PUBLIC_USER_ORDER,
    PublicUserSerializer,
    public_user_repr,
    public_user_value_repr,
)
from core.representation import datetime_repr, decimal_repr, dumps
from jobs.models import Job, SavedJob
from jobs.serializers import (
    JOB_DETAIL_COLUMNS,
    JOB_DETAIL_ORDER,
    JobSerializer,
    SavedJobSerializer,
    job_detail_values,
    job_rows,
    job_value_rows,
    job_values,
    saved_job_rows,
)
from payments.models import Payment
from payments.serializers import PAYMENT_VALUE_COLUMNS, PaymentSerializer, payment_rows, payment_value_rows
from ratings.models import Review
from ratings.serializers import REVIEW_VALUE_COLUMNS, ReviewSerializer, review_rows, review_value_rows
from tests.accounts.factories import ClientUserFactory, SkillFactory, WorkerUserFactory
from tests.jobs.factories import CategoryFactory, JobFactory, SavedJobFactory
from tests.payments.factories import PaymentFactory
from tests.ratings.factories import ReviewFactory

# No NUL: PostgreSQL refuses it in text (and the API never stores one).
ALPHABET = (
    [chr(c) for c in range(1, 32)]
    + list("abcXYZ 09\"\\/'<>&{}[],:")
    + ["\x7f", "é", "ß", "Ω", "中", "文", "\u2028", "\u2029", "\u00a0", "\ufeff", "😀", "𝄞", "\U0010fffd"]
)


def text(rng, longest=40):
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, longest)))


def money(rng, max_digits):
    whole = rng.choice([0, 1, 9, 10**(max_digits - 2) - 1, rng.randint(0, 10**(max_digits - 2) - 1)])
    return Decimal(f"{whole}.{rng.randint(0, 99):02d}")


def moment(rng):
    value = datetime(rng.randint(1990, 2090), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                     rng.randint(0, 59), rng.randint(0, 59), rng.choice([0, 1, 500000, rng.randint(0, 999999)]),
                     tzinfo=UTC)
    return value


def random_user(rng, factory):
    count = rng.choice([0, 0, 1, 3, 7])
    user = factory(first_name=text(rng, 20), last_name=text(rng, 20), rating_count=count,
                   rating_sum=rng.randint(count, 5 * count) if count else 0,
                   completed_jobs=rng.randint(0, 50))
    if rng.random() < 0.2:
        Profile.objects.filter(user=user).delete()  # a user without a profile (createsuperuser)
    else:
        Profile.objects.filter(user=user).update(
            bio=text(rng), city=text(rng, 10), hourly_rate=rng.choice([None, money(rng, 8)])
        )
        user.profile.skills.set(rng.sample(SKILLS, rng.randint(0, 3)))
    return user


SKILLS: list = []


@pytest.fixture
def world(db):
    rng = random.Random(20261130)
    SKILLS[:] = [SkillFactory(name=text(rng, 12) + f" {i}") for i in range(6)]
    categories = [CategoryFactory(name=text(rng, 12) + f" {i}", slug=f"c-{i}") for i in range(3)]
    clients = [random_user(rng, ClientUserFactory) for _ in range(5)]
    workers = [random_user(rng, WorkerUserFactory) for _ in range(5)]
    jobs = []
    for _ in range(30):
        start = moment(rng)
        job = JobFactory(client=rng.choice(clients), category=rng.choice(categories), title=text(rng) or "t",
                         description=text(rng, 200), city=text(rng, 12), rate=money(rng, 10) or Decimal("0.01"),
                         currency=rng.choice(["EUR", "USD", "GBP"]), workers_needed=rng.randint(1, 9),
                         start_at=start, end_at=start + timedelta(hours=rng.randint(1, 48), microseconds=rng.randint(0, 9)),
                         skills=rng.sample(SKILLS, rng.randint(0, 4)))
        Job.objects.filter(pk=job.pk).update(created_at=moment(rng), updated_at=moment(rng),
                                             applications_count=rng.randint(0, 99))
        jobs.append(job)
    for worker in workers:
        for job in rng.sample(jobs, 3):
            SavedJobFactory(user=worker, job=job)
    SavedJob.objects.update(created_at=moment(rng))
    for i in range(15):
        PaymentFactory(payer=rng.choice(clients), recipient=rng.choice(workers),
                       amount=money(rng, 12) or Decimal("0.01"), reference=f"ref-{i}-{text(rng, 8)}"[:64])
        ReviewFactory(reviewer=rng.choice(clients), reviewed=rng.choice(workers), rating=rng.randint(1, 5),
                      comment=text(rng, 100))
    Payment.objects.update(created_at=moment(rng))
    for review in Review.objects.all():
        Review.objects.filter(pk=review.pk).update(created_at=moment(rng))
    return {"clients": clients, "workers": workers, "jobs": jobs}


def drf_bytes(data) -> bytes:
    return JSONRenderer().render(data)


def test_row_by_row_the_same_bytes(world):
    jobs = list(Job.objects.for_list())
    assert dumps(job_rows(jobs)) == drf_bytes(JobSerializer(jobs, many=True).data)
    for job in jobs:
        assert dumps(job_rows([job])[0]) == drf_bytes(JobSerializer(job).data)
        # The detail's one query (a row per skill, by name): the same bytes.
        found = list(Job.objects.for_detail().filter(pk=job.pk).values_list(*JOB_DETAIL_COLUMNS)
                     .order_by(*JOB_DETAIL_ORDER))
        assert dumps(job_value_rows(job_detail_values(found))[0]) == drf_bytes(JobSerializer(job).data)
    assert any(len(JobSerializer(job).data["skills"]) >= 2 for job in jobs)
    assert job_detail_values([]) == []
    # From plain row values (the job list's path), in every order the list offers:
    # the same bytes as the serializer over the same jobs in that order.
    rated = world["clients"][0]
    User.objects.filter(pk=rated.pk).update(rating_sum=11, rating_count=3)  # 3.67: a rounded average
    for ordering in ("-created_at", "created_at", "rate", "-rate", "start_at", "-start_at"):
        queryset = Job.objects.for_list().order_by(ordering, "-id")
        fast = dumps(job_value_rows(job_values(queryset)))
        assert fast == drf_bytes(JobSerializer(list(queryset), many=True).data), ordering
    assert b'"rating_avg":"3.67"' in fast and b'"rating_avg":null' in fast
    assert b'"skills":[]' in fast and fast.count(b'"skills":["') > 1
    assert job_value_rows(job_values(Job.objects.none())) == []
    for worker in world["workers"]:
        saved = list(Job.objects.saved_by(worker))
        assert saved
        assert dumps(saved_job_rows(saved)) == drf_bytes(SavedJobSerializer(saved, many=True).data)
    users = list(User.objects.for_public())
    assert any(not Profile.objects.filter(user=u).exists() for u in users)  # the no-profile branch ran
    for user in users:
        assert dumps(public_user_repr(user)) == drf_bytes(PublicUserSerializer(user).data)
        # From plain row values (the public profile's path).
        one = list(User.objects.for_public().filter(pk=user.pk).values_list(*PUBLIC_USER_COLUMNS).order_by(*PUBLIC_USER_ORDER))
        assert dumps(public_user_value_repr(one)) == drf_bytes(PublicUserSerializer(user).data)
    assert public_user_value_repr([]) is None
    # The one-query profile (a row per skill) was checked with several skills.
    assert any(len(public_user_repr(u)["profile"]["skills"]) >= 2 for u in users)
    payments = list(Payment.objects.for_list())
    assert dumps(payment_rows(payments)) == drf_bytes(PaymentSerializer(payments, many=True).data)
    # From plain row values (the payment and review lists' path).
    values = Payment.objects.for_list().values_list(*PAYMENT_VALUE_COLUMNS)
    assert dumps(payment_value_rows(values)) == drf_bytes(PaymentSerializer(payments, many=True).data)
    reviews = list(Review.objects.for_list())
    assert dumps(review_rows(reviews)) == drf_bytes(ReviewSerializer(reviews, many=True).data)
    values = Review.objects.for_list().values_list(*REVIEW_VALUE_COLUMNS)
    assert dumps(review_value_rows(values)) == drf_bytes(ReviewSerializer(reviews, many=True).data)
    # A rounded average (the client rated above) reached both paths.
    assert b'"rating_avg":"3.67"' in drf_bytes(ReviewSerializer(reviews, many=True).data)
    # The random data did reach the awkward cases.
    everything = drf_bytes(JobSerializer(jobs, many=True).data) + drf_bytes(PaymentSerializer(payments, many=True).data)
    for needle in (b"\\u2028", b"\\u2029", b"\\u0001", "😀".encode(), b'"rating_avg":null', b"Z\""):
        assert needle in everything + drf_bytes(PublicUserSerializer(users, many=True).data), needle


@pytest.mark.parametrize("seed", range(5))
def test_scalar_formats_match_drf_fields(seed):
    """Decimals and datetimes outside the common case go to DRF's own fields."""
    from rest_framework import serializers

    rng = random.Random(seed)
    field = serializers.DecimalField(max_digits=12, decimal_places=2)
    for value in [Decimal("1.5"), Decimal("2"), Decimal("-0.00"), Decimal("3.14159"), 7, 2.5, "4.20",
                  money(rng, 12), Decimal("1E+2")]:
        assert decimal_repr(value, 2, 12) == field.to_representation(value), value
    dt_field = serializers.DateTimeField()
    naive = datetime(2026, 1, 2, 3, 4, 5)
    other_zone = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    for value in [moment(rng), naive, other_zone, "2026-01-01T00:00:00Z"]:
        assert datetime_repr(value) == dt_field.to_representation(value), value


def _body_without_tail(response) -> bytes:
    # The envelope's tail (correlation id, timestamp) differs per request.
    return re.sub(rb',"correlation_id":"[^"]*","timestamp":"[^"]*"}$', b"}", response.content)


ENDPOINTS = [
    "/api/v1/jobs/",
    "/api/v1/jobs/?per_page=100",
    # Pages past the first, in each order: the page's keys are picked before its
    # columns and skills are read (core.envelope.page_values).
    "/api/v1/jobs/?page=2&per_page=7",
    "/api/v1/jobs/?page=3&per_page=5&ordering=rate",
    "/api/v1/jobs/?page=2&per_page=4&ordering=-start_at&currency=EUR",
    "job_detail",
    "profile",
    "profile_without",
    "/api/v1/reviews/",
    "reviews_of",
    "reviews_by",
    "/api/v1/payments/",
    "payment_detail",
    "payments_of",
    "/api/v1/users/me/saved-jobs/",
]


def test_every_hot_endpoint_the_same_bytes_both_ways(world, monkeypatch):
    """The same URL answered by the fast representation and by the DRF serializer
    (``json_accepted`` forced off in the view modules), the cache emptied between."""
    from accounts import views as accounts_views
    from jobs import views as jobs_views
    from payments import views as payments_views
    from ratings import views as ratings_views
    from tests.conftest import _clear_cache, auth_client

    payment = Payment.objects.first()
    worker = payment.recipient
    no_profile = User.objects.filter(profile__isnull=True).first()
    review = Review.objects.first()
    urls = {
        "job_detail": f"/api/v1/jobs/{world['jobs'][3].pk}/",
        "profile": f"/api/v1/users/{worker.pk}/",
        "profile_without": f"/api/v1/users/{no_profile.pk}/",
        "reviews_of": f"/api/v1/users/{review.reviewed_id}/reviews/",
        "reviews_by": f"/api/v1/users/{review.reviewer_id}/reviews-given/",
        "payment_detail": f"/api/v1/payments/{payment.pk}/",
        "payments_of": f"/api/v1/users/{worker.pk}/payments/",
    }
    client = auth_client(worker)
    if not SavedJob.objects.filter(user=worker).exists():
        SavedJob.objects.create(user=worker, job=world["jobs"][0])
    for name in ENDPOINTS:
        url = urls.get(name, name)
        _clear_cache()
        fast = client.get(url, HTTP_ACCEPT="application/json")
        assert fast.status_code == 200, (url, fast.content[:200])
        assert fast["X-Cache"] == "MISS"
        with monkeypatch.context() as m:
            for module in (accounts_views, jobs_views, payments_views, ratings_views):
                m.setattr(module, "json_accepted", lambda request: False)
            _clear_cache()
            slow = client.get(url, HTTP_ACCEPT="application/json")
        assert slow.status_code == 200
        assert _body_without_tail(fast) == _body_without_tail(slow), url
        assert len(fast.json()["data"]) > 0


def test_the_lists_read_as_plain_values_count_their_rows_without_the_joins(world):
    """A page read as plain values (core.envelope.values_page) is counted on the
    model queryset: the total's query reads only the list's own table."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.conftest import _clear_cache, auth_client

    payment = Payment.objects.first()
    review = Review.objects.first()
    client = auth_client(payment.recipient)
    for url in ("/api/v1/jobs/", "/api/v1/jobs/?ordering=rate", f"/api/v1/users/{payment.recipient_id}/payments/",
                f"/api/v1/users/{review.reviewed_id}/reviews/"):
        _clear_cache()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, HTTP_ACCEPT="application/json")
        assert response.status_code == 200
        counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
        assert len(counts) == 1, (url, counts)
        assert "JOIN" not in counts[0].upper(), (url, counts[0])
        if url.startswith("/api/v1/jobs/"):
            assert response.json()["pagination"]["total_items"] == Job.objects.count() > 20
