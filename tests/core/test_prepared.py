"""Prepared reads (core/prepared.py): the rows, the statement and the query count of
the queryset they stand in for, on the suite's database (SQLite embedded,
PostgreSQL in CI's second run); a value the query would transform, or a queryset
that is not a plain ``values_list``, is refused when compiling; every view that
declares static handlers (core/representation.py, static_queryset) compiles the
same SQL whoever asks; and the prepared pages and details are the ORM's rows."""
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import F, Value
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver
from rest_framework.test import APIRequestFactory, force_authenticate

from accounts.models import User
from core.prepared import forget, prepared_rows
from core.representation import PreparedPage, lookup_queryset, lookup_values, static_queryset, view_rows
from jobs.models import Job
from jobs.serializers import JOB_COLUMNS
from tests.accounts.factories import ClientUserFactory, SkillFactory, StaffUserFactory, WorkerUserFactory
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db


def _job_columns(job_id):
    return Job.objects.for_detail().filter(pk=job_id).values_list(*JOB_COLUMNS)


def _skills(job_ids):
    return Job.skills.through.objects.filter(job_id__in=job_ids).order_by("skill__name").values_list(
        "job_id", "skill__name")


@pytest.fixture(autouse=True)
def fresh_statements():
    forget()
    yield
    forget()


def test_rows_equal_the_querysets_datetimes_and_decimals_included():
    jobs = [JobFactory(rate=Decimal("12.34") + i) for i in range(3)]
    for job in jobs:
        job.skills.set([SkillFactory(name=f"s{job.pk}-{n}") for n in range(2)])
    for job in jobs + [jobs[0]]:  # the second read of jobs[0] runs the compiled statement
        got = prepared_rows("test.job_columns", _job_columns, (job.pk,))
        assert got == list(_job_columns(job.pk))
        assert len(got) == 1 and type(got[0]) is tuple
        row = dict(zip(JOB_COLUMNS, got[0]))
        assert row["rate"] == job.rate and isinstance(row["rate"], Decimal)
        assert row["start_at"] == job.start_at and row["start_at"].tzinfo is not None
    assert prepared_rows("test.job_columns", _job_columns, (10**12,)) == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's loaders: PostgreSQL only")
def test_on_postgresql_timestamps_are_parsed_by_the_drivers_loader_on_that_cursor_only():
    """core.prepared._driver_loaders: the prepared read's cursor parses timestamptz
    with psycopg's own loader; the values are the ORM's (the same aware instants),
    and the connection keeps Django's loader for everything else."""
    import psycopg
    from psycopg.pq import Format

    from core.prepared import _driver_loaders

    job = JobFactory()
    got = prepared_rows("test.job_columns", _job_columns, (job.pk,))
    row = dict(zip(JOB_COLUMNS, got[0]))
    orm = dict(zip(JOB_COLUMNS, _job_columns(job.pk)[0]))
    for column in ("start_at", "end_at", "created_at", "updated_at"):
        assert row[column] == orm[column] and row[column].utcoffset().total_seconds() == 0
    oid = psycopg.adapters.types["timestamptz"].oid
    drivers = psycopg.adapters.get_loader(oid, Format.TEXT)
    with connection.cursor() as cursor:
        assert cursor.cursor.adapters.get_loader(oid, Format.TEXT) is not drivers  # Django's, untouched
        _driver_loaders(connection, cursor)
        assert cursor.cursor.adapters.get_loader(oid, Format.TEXT) is drivers
    with connection.cursor() as cursor:
        assert cursor.cursor.adapters.get_loader(oid, Format.TEXT) is not drivers


def test_a_list_argument_any_length_duplicates_included_and_empty_without_a_query():
    jobs = [JobFactory() for _ in range(4)]
    for job in jobs:
        job.skills.set([SkillFactory(name=f"k{job.pk}")])
    ids = [job.pk for job in jobs]
    for chosen in (ids[:1], ids, ids[1:3], [ids[0], ids[0], ids[2]], ids[::-1]):
        assert prepared_rows("test.skills", _skills, (chosen,)) == list(_skills(chosen))
    with CaptureQueriesContext(connection) as ctx:
        assert prepared_rows("test.skills", _skills, ([],)) == []
    assert len(ctx.captured_queries) == 0


def test_flat_values_and_one_query_through_the_connection():
    user = WorkerUserFactory()
    build = lambda pk: User.objects.filter(pk=pk).values_list("email", flat=True)  # noqa: E731
    prepared_rows("test.email", build, (user.pk,))  # compiled
    with CaptureQueriesContext(connection) as ctx:
        assert prepared_rows("test.email", build, (user.pk,)) == [user.email]
    assert len(ctx.captured_queries) == 1
    assert str(user.pk) in ctx.captured_queries[0]["sql"]


def test_a_transformed_value_or_a_queryset_it_cannot_run_is_refused():
    with pytest.raises(ValueError, match="not found as SQL parameters"):
        # A CharField turns the id into a string: its position cannot be found.
        prepared_rows("test.cast", lambda v: Job.objects.filter(title=v).values_list("id"), (1,))
    with pytest.raises(ValueError, match="values_list"):
        prepared_rows("test.models", lambda v: Job.objects.filter(pk=v), (1,))
    with pytest.raises(ValueError, match="after the plain columns"):
        # The ORM reorders such rows to the asked order; a prepared read does not.
        prepared_rows("test.expression-first",
                      lambda v: Job.objects.filter(pk=v).values_list(F("rate"), "id"), (1,))
    with pytest.raises(ValueError, match="extra"):
        prepared_rows("test.extra",
                      lambda v: Job.objects.filter(pk=v).extra(select={"x": "1"}).values_list("id", "x"), (1,))


def test_expressions_after_the_plain_columns_read_as_the_orm_reads_them():
    job = JobFactory(rate=Decimal("12.50"))
    for key, build, expected in [
        ("test.annotated", lambda v: Job.objects.filter(pk=v).annotate(x=Value(7)).values_list("id", "x"), 7),
        ("test.expression", lambda v: Job.objects.filter(pk=v).values_list("id", F("rate")), Decimal("12.50")),
    ]:
        assert prepared_rows(key, build, (job.pk,)) == list(build(job.pk)) == [(job.pk, expected)]


def _static_views():
    """(pattern, view class, action map) of every URL whose view declares static handlers."""
    found = []

    def walk(resolver, prefix=""):
        for entry in resolver.url_patterns:
            if hasattr(entry, "url_patterns"):
                walk(entry, prefix + str(entry.pattern))
                continue
            view = getattr(entry.callback, "cls", None)
            if view is not None and getattr(view, "static_queryset_for", ()):
                found.append((prefix + str(entry.pattern), view, getattr(entry.callback, "actions", None)))

    walk(get_resolver())
    return found


def _view(view_class, actions, handler, caller, query, kwargs):
    request = APIRequestFactory().get("/x/" + query)
    if caller is not None:
        force_authenticate(request, user=caller)
    view = view_class(**({"action_map": actions} if actions else {}))
    view.action = handler if actions is not None else None
    view.args, view.kwargs = (), dict(kwargs)
    view.request = view.initialize_request(request)
    view.format_kwarg = None
    return view


def _url_kwargs(pattern):
    return {name: 7 for name in re.findall(r"<id:(\w+)>", pattern)}


def test_every_static_view_compiles_the_same_sql_for_every_caller():
    """What static_queryset_for promises: the handler's queryset (and for a detail
    what get_object() reads) is the same SQL, parameters included, whoever asks and
    whatever query string comes with it when it names no filter."""
    views = _static_views()
    names = {view.__name__ for _, view, _ in views}
    assert {"JobViewSet", "PublicUserView", "UserReviewsReceivedView", "ReviewViewSet", "UserPaymentListView"} <= names
    callers = [None, ClientUserFactory(), WorkerUserFactory(), StaffUserFactory()]
    checked = 0
    for pattern, view_class, actions in views:
        for handler in view_class.static_queryset_for:
            if actions is not None and handler not in actions.values():
                continue
            if actions is None and handler != "get":
                continue
            kwargs = _url_kwargs(pattern)
            statements = set()
            for caller in callers:
                for query in ("", "?page=2&per_page=5", "?unknown=1&_b=3"):
                    view = _view(view_class, actions, handler, caller, query, kwargs)
                    assert static_queryset(view), (pattern, handler, query)
                    statements.add(view.filter_queryset(view.get_queryset()).query.sql_with_params())
            assert len(statements) == 1, (pattern, handler, statements)
            checked += 1
    assert checked >= 4


def test_a_filter_or_a_non_id_argument_is_read_through_the_orm():
    from jobs.views import JobViewSet

    actions = {"get": "list"}
    assert static_queryset(_view(JobViewSet, actions, "list", None, "?page=3", {}))
    for query in ("?status=open", "?search=x", "?ordering=-rate", "?city=Paris", "?min_rate=1"):
        assert not static_queryset(_view(JobViewSet, actions, "list", None, query, {})), query
    # A detail ignores the list's filters (ListOnlyFilterMixin).
    assert static_queryset(_view(JobViewSet, {"get": "retrieve"}, "retrieve", None, "?status=open", {"pk": 7}))
    assert not static_queryset(_view(JobViewSet, {"get": "retrieve"}, "retrieve", None, "", {"pk": "7"}))
    # A handler the view does not name.
    assert not static_queryset(_view(JobViewSet, {"get": "applications"}, "applications", None, "", {"pk": 7}))


def test_a_prepared_page_refuses_a_handler_queryset_that_is_not_the_views(as_worker):
    from jobs.views import JobViewSet

    JobFactory()
    view = _view(JobViewSet, {"get": "list"}, "list", None, "", {})
    other = Job.objects.filter(pk__gt=0).order_by("-id")  # not what the view shows
    with pytest.raises(ValueError, match="not the view's own"):
        PreparedPage(view, other, ("id",))[0:5]
    same = view.filter_queryset(view.get_queryset())
    assert PreparedPage(view, same, ("id",))[0:5] == list(same.values_list("id")[0:5])


def test_lookup_values_and_pages_are_the_querysets_rows():
    from jobs.views import JobViewSet

    jobs = [JobFactory() for _ in range(7)]
    view = _view(JobViewSet, {"get": "retrieve"}, "retrieve", None, "", {"pk": jobs[0].pk})
    assert lookup_values(view, *JOB_COLUMNS) == list(lookup_queryset(view).values_list(*JOB_COLUMNS))
    view.kwargs = {"pk": 10**12}
    assert lookup_values(view, *JOB_COLUMNS) == []
    listing = _view(JobViewSet, {"get": "list"}, "list", None, "", {})
    queryset = listing.filter_queryset(listing.get_queryset())
    page = PreparedPage(listing, queryset, JOB_COLUMNS)
    for window in (slice(0, 3), slice(3, 6), slice(6, 9)):
        assert page[window] == list(queryset.values_list(*JOB_COLUMNS)[window])


def test_the_hot_lists_with_and_without_filters_show_the_same_rows(anon):
    """The prepared page (no filter) and the ORM's (a filter that keeps every row)
    give the same body."""
    client = ClientUserFactory()
    for _ in range(5):
        JobFactory(client=client, status="open")
    plain = anon.get("/api/v1/jobs/?per_page=3&page=2")
    filtered = anon.get("/api/v1/jobs/?per_page=3&page=2&status=open")
    assert plain.status_code == filtered.status_code == 200
    assert plain.json()["data"] == filtered.json()["data"]
    assert plain.json()["pagination"] == filtered.json()["pagination"]


def test_a_url_argument_used_twice_fills_both_places_and_a_wrong_statement_is_refused():
    """An argument the query uses twice (payer or recipient) fills both parameters.
    And the first statement is checked against the queryset itself: a build that
    does not give the queryset the handler would read (here, one that reads its
    id from somewhere the sentinels do not reach) is refused before anything is
    kept or answered."""
    from django.db.models import Q

    from ratings.models import Review
    from ratings.views import UserReviewsReceivedView
    from tests.ratings.factories import ReviewFactory

    class Twice(UserReviewsReceivedView):
        def get_queryset(self):
            pk = self.kwargs["pk"]
            return Review.objects.filter(Q(reviewed_id=pk) | Q(reviewer_id=pk)).order_by("-id")

    review = ReviewFactory()
    for pk in (review.reviewed_id, review.reviewer_id, 10**12):
        view = _view(Twice, None, "get", None, "", {"pk": pk})
        got = view_rows(view, ("ids",), lambda v: v.filter_queryset(v.get_queryset()).values_list("id"))
        assert got == list(view.get_queryset().values_list("id"))
        assert got == ([] if pk == 10**12 else [(review.pk,)])

    outside = {"pk": review.reviewed_id}

    class Elsewhere(UserReviewsReceivedView):
        def get_queryset(self):
            return Review.objects.filter(reviewed_id=outside["pk"]).order_by("-id")

    view = _view(Elsewhere, None, "get", None, "", {"pk": review.reviewed_id})
    for _ in range(2):  # nothing was kept: the second call checks (and refuses) again
        with pytest.raises(ValueError, match="not found as SQL parameters"):
            view_rows(view, ("ids",), lambda v: v.filter_queryset(v.get_queryset()).values_list("id"))

    class Branches(UserReviewsReceivedView):
        def get_queryset(self):
            pk = self.kwargs["pk"]
            field = "reviewed_id" if pk > 0 else "reviewer_id"  # a sentinel takes the other branch
            return Review.objects.filter(**{field: pk}).order_by("-id")

    view = _view(Branches, None, "get", None, "", {"pk": review.reviewed_id})
    with pytest.raises(ValueError, match="not the queryset's"):
        view_rows(view, ("ids",), lambda v: v.filter_queryset(v.get_queryset()).values_list("id"))


def test_the_statements_kept_per_thread_are_bounded(monkeypatch):
    import core.prepared as prepared

    monkeypatch.setattr(prepared, "MAX_PER_THREAD", 3)
    job = JobFactory()
    for n in range(10):
        build = lambda pk, n=n: Job.objects.filter(pk=pk).values_list("id")[: n + 1]  # noqa: E731
        assert prepared_rows(("test.bounded", n), build, (job.pk,)) == [(job.pk,)]
        assert len(prepared._local.compiled) <= 3
