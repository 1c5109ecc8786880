"""Prepared reads (core/prepared.py): the rows, the statement and the query count of
the queryset they stand in for, on the suite's database (SQLite embedded,
PostgreSQL in CI's second run); a value the query would transform, or a queryset
that is not a plain ``values_list``, is refused when compiling; and every view
that declares a static lookup queryset (core/representation.py, lookup_values)
compiles the same SQL whoever asks."""
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import F, Value
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver
from rest_framework.test import APIRequestFactory, force_authenticate

from accounts.models import User
from accounts.serializers import PUBLIC_USER_COLUMNS
from core.prepared import forget, prepared_rows
from core.representation import lookup_queryset, lookup_values
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
    with pytest.raises(ValueError, match="plain columns"):
        prepared_rows("test.annotated",
                      lambda v: Job.objects.filter(pk=v).annotate(x=Value(1)).values_list("id", "x"), (1,))
    with pytest.raises(ValueError, match="plain columns"):
        prepared_rows("test.expression",
                      lambda v: Job.objects.filter(pk=v).values_list("id", F("rate")), (1,))


def _static_lookup_views():
    """(pattern, view class) of every URL whose view declares static lookup actions."""
    found = []

    def walk(resolver, prefix=""):
        for entry in resolver.url_patterns:
            if hasattr(entry, "url_patterns"):
                walk(entry, prefix + str(entry.pattern))
                continue
            view = getattr(entry.callback, "cls", None)
            if view is not None and getattr(view, "static_lookup_actions", ()):
                found.append((prefix + str(entry.pattern), view, getattr(entry.callback, "actions", None)))

    walk(get_resolver())
    return found


def test_every_static_lookup_view_compiles_the_same_sql_for_every_caller():
    views = _static_lookup_views()
    names = {view.__name__ for _, view, _ in views}
    assert {"JobViewSet", "PublicUserView"} <= names
    callers = [None, ClientUserFactory(), WorkerUserFactory(), StaffUserFactory()]
    factory = APIRequestFactory()
    checked = 0
    for pattern, view_class, actions in views:
        for action in view_class.static_lookup_actions:
            if actions is not None and action not in actions.values():
                continue
            statements = set()
            for caller in callers:
                # A query string too: a list filter must not reach a detail's lookup.
                request = factory.get("/x/?status=open&ordering=-rate&search=a")
                if caller is not None:
                    force_authenticate(request, user=caller)
                view = view_class(**({"action_map": actions} if actions else {}))
                view.action = action if actions is not None else None
                view.args, view.kwargs = (), {view.lookup_url_kwarg or view.lookup_field: 7}
                view.request = view.initialize_request(request)
                view.format_kwarg = None
                sql, params = lookup_queryset(view).query.sql_with_params()
                statements.add((sql, params))
            assert len(statements) == 1, (pattern, action, statements)
            checked += 1
    assert checked >= 2


def test_lookup_values_is_the_lookup_querysets_rows(as_worker):
    job = JobFactory()
    other = WorkerUserFactory()
    for path, columns in ((f"/api/v1/jobs/{job.pk}/", JOB_COLUMNS),
                          (f"/api/v1/users/{other.pk}/", PUBLIC_USER_COLUMNS)):
        response = as_worker.get(path + "?_=1")
        assert response.status_code == 200
    # Directly, through a view instance as the handler sees it.
    from jobs.views import JobViewSet

    request = APIRequestFactory().get("/")
    view = JobViewSet(action_map={"get": "retrieve"})
    view.action, view.args, view.kwargs = "retrieve", (), {"pk": job.pk}
    view.request = view.initialize_request(request)
    view.format_kwarg = None
    assert lookup_values(view, *JOB_COLUMNS) == list(lookup_queryset(view).values_list(*JOB_COLUMNS))
    view.kwargs = {"pk": 10**12}
    assert lookup_values(view, *JOB_COLUMNS) == []
