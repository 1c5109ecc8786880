"""Row scopes (docs/cache.md, "Coarse scopes and row scopes"): an entry names the rows it shows and
is checked against their versions on every hit.

For each list/detail: a change to a shown related row (a client's new name, a
new rating, a new applications count) is visible at once; a change to a row the
entry does NOT show leaves it valid (a HIT after the unrelated write - the point
of row scopes). And the race: a write committing between the ids query and the
real query, or between the real query and the store, never leaves a stale entry
to be served. ``transaction=True`` so that bumps run on commit as in production.
"""
import io

import pytest

import core.cache as core_cache
from accounts import services as account_services
from jobs import services as job_services
from jobs.models import JobStatus
from ratings import services as rating_services
from tests.accounts.factories import ClientUserFactory, WorkerUserFactory
from tests.cache.helpers import by_id
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, JobFactory, SavedJobFactory
from tests.payments.factories import PaymentFactory
from tests.ratings.factories import ReviewFactory, completed_job

pytestmark = pytest.mark.django_db(transaction=True)


def get(caller, path, expect):
    response = caller.get(path)
    assert response.status_code == 200, response.content
    assert response["X-Cache"] == expect, f"{path}: expected {expect}"
    return response.json()["data"]


def warm(caller, path):
    get(caller, path, "MISS")
    return get(caller, path, "HIT")


def rename(user, last_name):
    account_services.user_update(user=user, user_fields={"last_name": last_name}, profile_fields={})


def review_of(worker, rating=5):
    """A real review (through the service: the worker's rating changes) of ``worker``
    by the client of a new completed job."""
    job = completed_job(worker=worker)
    return rating_services.review_create(reviewer=job.client, job=job.pk, reviewed=worker.pk, rating=rating)


# --- job list and detail (public) ------------------------------------------------


def test_job_list_shows_a_clients_new_name_and_ignores_other_users(anon):
    shown, other = ClientUserFactory(last_name="Before"), ClientUserFactory()
    job = JobFactory(client=shown)
    path = "/api/v1/jobs/"
    warm(anon, path)

    rename(other, "Elsewhere")  # shows in no job of the list
    WorkerUserFactory()  # a new user: no list shows them
    get(anon, path, "HIT")

    rename(shown, "After")
    rows = get(anon, path, "MISS")
    assert by_id(rows, job.pk)["client"]["last_name"] == "After"
    get(anon, path, "HIT")


def test_job_list_counter_on_the_page_only(anon):
    old = JobFactory(status=JobStatus.OPEN)
    shown = JobFactory(status=JobStatus.OPEN)
    path = "/api/v1/jobs/?per_page=1"  # newest first: only ``shown``
    assert [row["id"] for row in warm(anon, path)] == [shown.pk]

    job_services.application_create(job=old, worker=WorkerUserFactory())
    get(anon, path, "HIT")  # a count of a job not on the page

    job_services.application_create(job=shown, worker=WorkerUserFactory())
    assert get(anon, path, "MISS")[0]["applications_count"] == 1


def test_job_list_rating_change_of_a_client(anon):
    client = ClientUserFactory()
    job = JobFactory(client=client)
    # The client will be reviewed by a worker of another (completed) job of theirs.
    done = completed_job(client=client)
    worker = done.applications.get().worker
    assert by_id(warm(anon, "/api/v1/jobs/"), job.pk)["client"]["rating_avg"] is None
    rating_services.review_create(reviewer=worker, job=done.pk, reviewed=client.pk, rating=2)
    rows = get(anon, "/api/v1/jobs/", "MISS")
    assert by_id(rows, job.pk)["client"]["rating_avg"] == "2.00"


def test_job_detail(anon):
    job, other_job = JobFactory(), JobFactory()
    path = f"/api/v1/jobs/{job.pk}/"
    warm(anon, path)

    rename(other_job.client, "Elsewhere")
    job_services.application_create(job=other_job, worker=WorkerUserFactory())
    get(anon, path, "HIT")

    rename(job.client, "Renamed")
    assert get(anon, path, "MISS")["client"]["last_name"] == "Renamed"
    job_services.application_create(job=job, worker=WorkerUserFactory())
    assert get(anon, path, "MISS")["applications_count"] == 1


def test_job_edit_changes_membership_and_is_shown(anon):
    job = JobFactory(title="Old title")
    warm(anon, "/api/v1/jobs/?search=new")
    job_services.job_update(job=job, by=job.client, data={"title": "New title"})
    assert [row["id"] for row in get(anon, "/api/v1/jobs/?search=new", "MISS")] == [job.pk]


# --- private lists ----------------------------------------------------------------


def test_my_applications_and_a_jobs_applications():
    client, worker, stranger = ClientUserFactory(), WorkerUserFactory(), WorkerUserFactory()
    job = JobFactory(client=client)
    ApplicationFactory(job=job, worker=worker)
    as_worker, as_client = auth_client(worker), auth_client(client)
    mine, theirs = "/api/v1/applications/", f"/api/v1/jobs/{job.pk}/applications/"
    warm(as_worker, mine)
    warm(as_client, theirs)

    rename(stranger, "Elsewhere")
    get(as_worker, mine, "HIT")
    get(as_client, theirs, "HIT")

    rename(worker, "Renamed")
    assert get(as_client, theirs, "MISS")[0]["worker"]["last_name"] == "Renamed"
    # The job ref inside the worker's list: a new title.
    job_services.job_update(job=job, by=client, data={"title": "Retitled"})
    assert get(as_worker, mine, "MISS")[0]["job"]["title"] == "Retitled"


def test_saved_jobs():
    user = WorkerUserFactory()
    saved, other = JobFactory(), JobFactory()
    SavedJobFactory(user=user, job=saved)
    caller, path = auth_client(user), "/api/v1/users/me/saved-jobs/"
    warm(caller, path)

    job_services.application_create(job=other, worker=WorkerUserFactory())
    rename(other.client, "Elsewhere")
    get(caller, path, "HIT")

    job_services.application_create(job=saved, worker=WorkerUserFactory())
    assert get(caller, path, "MISS")[0]["applications_count"] == 1
    rename(saved.client, "Renamed")
    assert get(caller, path, "MISS")[0]["client"]["last_name"] == "Renamed"


def test_payments_list_and_detail():
    payment, other = PaymentFactory(), PaymentFactory()
    caller = auth_client(payment.payer)
    paths = ["/api/v1/payments/", f"/api/v1/payments/{payment.pk}/", f"/api/v1/users/{payment.payer_id}/payments/"]
    for path in paths:
        warm(caller, path)

    rename(other.recipient, "Elsewhere")
    review_of(other.recipient)
    for path in paths:
        get(caller, path, "HIT")

    review_of(payment.recipient, rating=3)
    rows = [get(caller, path, "MISS") for path in paths]
    assert rows[0][0]["recipient"]["rating_avg"] == "3.00"
    assert rows[1]["recipient"]["rating_avg"] == "3.00"
    assert rows[2][0]["recipient"]["rating_avg"] == "3.00"


# --- reviews (public) ---------------------------------------------------------------


def test_review_lists(anon):
    review, other = ReviewFactory(), ReviewFactory()
    received = f"/api/v1/users/{review.reviewed_id}/reviews/"
    given = f"/api/v1/users/{review.reviewer_id}/reviews-given/"
    everything = "/api/v1/reviews/"
    for path in (received, given, everything):
        warm(anon, path)

    # A new review of someone else: the per-user lists stay, the global one goes.
    review_of(other.reviewed)
    get(anon, received, "HIT")
    get(anon, given, "HIT")
    get(anon, everything, "MISS")

    # A new rating of a shown user (a review of them elsewhere).
    review_of(review.reviewed, rating=1)
    assert get(anon, given, "MISS")[0]["reviewed"]["rating_avg"] == "1.00"
    assert len(get(anon, received, "MISS")) == 2


# --- the races ------------------------------------------------------------------------


def test_write_between_the_row_versions_and_the_query_is_not_served_stale(anon, monkeypatch):
    client = ClientUserFactory(last_name="Before")
    JobFactory(client=client)
    state = {"done": False}

    def write_now(request):
        if not state["done"]:
            state["done"] = True
            rename(client, "Racing")  # commits and bumps user:<id> here

    monkeypatch.setattr(core_cache.response, "_rows_read_hook", write_now)
    first = get(anon, "/api/v1/jobs/", "MISS")
    assert state["done"]
    assert first[0]["client"]["last_name"] == "Racing"  # the query ran after the commit
    # The entry carries the version read before the write: never served.
    assert get(anon, "/api/v1/jobs/", "MISS")[0]["client"]["last_name"] == "Racing"
    get(anon, "/api/v1/jobs/", "HIT")


def test_write_after_the_query_before_the_store_is_not_served_stale(anon, monkeypatch):
    client = ClientUserFactory(last_name="Before")
    job = JobFactory(client=client)
    state = {"done": False}

    def write_now(request):
        if not state["done"]:
            state["done"] = True
            rename(client, "Racing")
            job_services.application_create(job=job, worker=WorkerUserFactory())

    monkeypatch.setattr(core_cache.response, "_before_store_hook", write_now)
    for path in ("/api/v1/jobs/", f"/api/v1/jobs/{job.pk}/"):
        state["done"] = False
        first = get(anon, path, "MISS")
        rows = first if isinstance(first, list) else [first]
        assert rows[0]["client"]["last_name"] in ("Before", "Racing")  # built before this round's write
        again = get(anon, path, "MISS")  # the stored (old) entry fails its check
        rows = again if isinstance(again, list) else [again]
        assert rows[0]["client"]["last_name"] == "Racing"


def test_new_row_between_the_ids_query_and_the_real_query_retires_the_entry(anon, monkeypatch):
    """The real query shows a row the ids query did not see (so no row scope
    covers it): the coarse ``jobs``, bumped after that commit, retires the key."""
    JobFactory()
    state = {"new": None}

    def create_now(request):
        if state["new"] is None:
            state["new"] = JobFactory()  # a save: post_save bumps ``jobs`` on commit

    monkeypatch.setattr(core_cache.response, "_rows_read_hook", create_now)
    assert len(get(anon, "/api/v1/jobs/", "MISS")) == 2  # the late job, without its row scope
    monkeypatch.setattr(core_cache.response, "_rows_read_hook", lambda request: None)
    rows = get(anon, "/api/v1/jobs/", "MISS")  # ``jobs`` was bumped after the key was made
    assert state["new"].pk in [row["id"] for row in rows]


def test_entry_header_names_the_rows_shown(anon):
    job = JobFactory()
    get(anon, "/api/v1/jobs/", "MISS")
    b = core_cache.backend()
    names = [k for k in b.scan_prefix(core_cache.RESPONSE_PREFIX) if k.startswith("r:JobViewSet.list")]
    assert len(names) == 1
    rows, fragment = core_cache.decode_entry(b.get(names[0]))
    assert set(rows) == {b.version_key(f"job:{job.pk}"), b.version_key(f"user:{job.client_id}")}
    assert fragment.startswith(b'"data":')


# --- the plain job list (jobs:set) ------------------------------------------------------


def test_plain_job_list_survives_edits_of_jobs_not_shown_and_sees_new_jobs(anon):
    old = JobFactory(status=JobStatus.OPEN)
    shown = JobFactory(status=JobStatus.OPEN)
    plain, filtered = "/api/v1/jobs/?per_page=1", "/api/v1/jobs/?status=open&per_page=1"
    warm(anon, plain)
    warm(anon, filtered)

    # An edit and a status change of a job that is not on the page.
    job_services.job_update(job=old, by=old.client, data={"title": "Edited"})
    job_services.job_cancel(job=old, by=old.client)
    get(anon, plain, "HIT")
    get(anon, filtered, "MISS")  # filtered lists hang on ``jobs``

    # A status change of the job shown: its row scope.
    job_services.job_cancel(job=shown, by=shown.client)
    assert get(anon, plain, "MISS")[0]["status"] == JobStatus.CANCELLED

    # A new job (newest first: it takes the page).
    new = JobFactory()
    assert [row["id"] for row in get(anon, plain, "MISS")] == [new.pk]


def test_plain_job_list_hangs_on_the_bulk_writers_scope():
    """``manage.py seed`` creates jobs without signals and bumps the global scopes,
    ``jobs:set`` among them (tools/management/commands/seed.py GLOBAL_SCOPES)."""
    from django.test import RequestFactory

    from jobs.cache import JOB_SET, JOBS
    from jobs.views import job_list_scopes
    from tools.management.commands.seed import GLOBAL_SCOPES

    plain = job_list_scopes(None, RequestFactory().get("/api/v1/jobs/?page=2&per_page=5"))
    assert JOB_SET in plain and JOB_SET in GLOBAL_SCOPES
    assert JOBS in job_list_scopes(None, RequestFactory().get("/api/v1/jobs/?ordering=rate"))


def evict_entries():
    """Drop every stored response, as Redis does under memory pressure (or a TTL):
    the counters stay."""
    b = core_cache.backend()
    for key in list(b.scan_prefix(core_cache.RESPONSE_PREFIX)):
        b.delete(key)


def test_job_detail_recalls_its_client_under_the_jobs_version(anon, settings):
    """Rows(recall=True): a second miss of the same job (its entry evicted) reads
    the client it showed from memory while job:<id> is unchanged (2 queries, not 3);
    a change to the job -- even to its client, which the API never makes -- bumps
    job:<id>, and the next miss reads the row scopes again, so the new client's own
    changes are seen. The same URL both times: on a Redis Cluster another spelling
    may land in another group, whose copy of job:<id> has a value of its own, and
    the memory is kept per copy (test below)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.RESPONSE_CACHE_KEY_EXTRA_PARAMS = ("a",)
    job = JobFactory()
    first_client, other_client = job.client, ClientUserFactory()
    path = f"/api/v1/jobs/{job.pk}/"
    # Counted at once: captured_queries is read lazily from a log each request resets.
    with CaptureQueriesContext(connection) as first:
        get(anon, path, "MISS")
    first = len(first.captured_queries)
    get(anon, path, "HIT")
    evict_entries()
    with CaptureQueriesContext(connection) as again:
        assert get(anon, path, "MISS")["client"]["id"] == first_client.pk
    assert len(again.captured_queries) == first - 1

    job.client = other_client  # out of band: the API keeps a job's client
    job.save()  # bumps job:<id> (core/signals.py)
    with CaptureQueriesContext(connection) as after_write:
        assert get(anon, path + "?a=3", "MISS")["client"]["id"] == other_client.pk
    assert len(after_write.captured_queries) == first
    rename(other_client, "Renamed")
    assert get(anon, path + "?a=3", "MISS")["client"]["last_name"] == "Renamed"
    rename(first_client, "Gone")  # no longer shown: the entry stays valid
    assert get(anon, path + "?a=3", "HIT")["client"]["last_name"] == "Renamed"


def test_job_detail_memory_is_per_counter_not_per_value(anon, monkeypatch):
    """What is remembered is tied to the counter a version was read from, not to
    the number alone: on a Redis Cluster two groups' copies of job:<id> are
    independent counters, and one copy can reach a value another had before a
    write. Here the backend names the counter differently for the second miss (as
    another group does) while its value is the same: the ids query runs again."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    job = JobFactory()
    path = f"/api/v1/jobs/{job.pk}/"
    with CaptureQueriesContext(connection) as first:
        get(anon, path, "MISS")
    first = len(first.captured_queries)
    evict_entries()
    b = core_cache.backend()
    real = b.version_key
    monkeypatch.setattr(b, "version_key", lambda scope: "{other}" + real(scope))
    with CaptureQueriesContext(connection) as other_copy:
        assert get(anon, path, "MISS")["client"]["id"] == job.client_id
    assert len(other_copy.captured_queries) == first


def test_job_detail_memory_is_retired_with_every_entry(anon):
    """``cache_invalidate --all`` bumps the global generation, which retires every
    entry; it retires what a detail remembered too (the ids query runs again)."""
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    job = JobFactory()
    path = f"/api/v1/jobs/{job.pk}/"
    with CaptureQueriesContext(connection) as first:
        get(anon, path, "MISS")
    first = len(first.captured_queries)
    call_command("cache_invalidate", "--all", stdout=io.StringIO())
    with CaptureQueriesContext(connection) as after:
        assert get(anon, path, "MISS")["client"]["id"] == job.client_id
    assert len(after.captured_queries) == first


# --- lists that recall their ids query (Rows(recall=True)) ---------------------------


def ids_queries(ctx, table, *names):
    """How many of the captured statements are ``Rows``' ids query: exactly
    ``names`` of ``table``, nothing joined."""
    columns = ", ".join(f'"{table}"."{n}" AS "{n}"' for n in names)
    return sum(q["sql"].startswith(f"SELECT {columns} FROM \"{table}\"") for q in ctx.captured_queries)


def _reviews(worker):
    return f"/api/v1/users/{worker.pk}/reviews/", ("ratings_review", "job_id", "reviewer_id", "reviewed_id")


def _jobs(worker):
    return "/api/v1/jobs/", ("jobs_job", "id", "client_id")


@pytest.mark.parametrize("endpoint", [_reviews, _jobs], ids=["reviews of a user", "job list"])
def test_a_list_recalls_its_rows_until_a_coarse_scope_moves(anon, endpoint):
    """A miss under the same coarse versions (here: the entry retired by a row
    scope, a renamed client) reuses the ids query's answer and still shows the
    change; a new row (its coarse scope bumped) runs the ids query again, and the
    new row is shown."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    worker = WorkerUserFactory()
    first = review_of(worker)
    client = first.reviewer
    path, (table, *names) = endpoint(worker)
    with CaptureQueriesContext(connection) as cold:
        get(anon, path, "MISS")
    assert ids_queries(cold, table, *names) == 1
    get(anon, path, "HIT")

    rename(client, "Renamed")  # a row scope: no coarse scope moves
    with CaptureQueriesContext(connection) as recalled:
        rows = get(anon, path, "MISS")
    assert ids_queries(recalled, table, *names) == 0
    assert "Renamed" in str(rows)

    second = review_of(worker)  # a new review (and its new job): a coarse scope moves
    with CaptureQueriesContext(connection) as moved:
        rows = get(anon, path, "MISS")
    assert ids_queries(moved, table, *names) == 1
    shown = second.pk if table == "ratings_review" else second.job_id
    assert shown in [row["id"] for row in rows]


def test_a_filtered_list_does_not_recall(anon):
    """A filter makes the view's reads depend on the query string
    (core.representation.static_queryset): its ids query always runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = ClientUserFactory()
    JobFactory(client=client)
    path = "/api/v1/jobs/?ordering=rate"
    warm(anon, path)
    rename(client, "Renamed")
    with CaptureQueriesContext(connection) as ctx:
        assert "Renamed" in str(get(anon, path, "MISS"))
    assert ids_queries(ctx, "jobs_job", "id", "client_id") == 1


def test_recalled_columns_are_read_only_in_the_admin():
    """What ``recall=True`` rests on: the columns its ids query reads (other than
    the row's id) are fixed once written. The API has no way to change them, and
    the admin shows them read-only on an existing row."""
    from django.contrib import admin
    from django.test import RequestFactory

    from core.cache import Rows
    from jobs.models import Job
    from jobs.views import JobViewSet
    from payments.models import Payment
    from payments.views import UserPaymentListView
    from ratings.models import Review
    from ratings.views import ReviewViewSet, UserReviewsGivenView, UserReviewsReceivedView

    declared = [(JobViewSet, "list", Job), (JobViewSet, "retrieve", Job), (ReviewViewSet, "list", Review),
                (UserReviewsReceivedView, "get", Review), (UserReviewsGivenView, "get", Review),
                (UserPaymentListView, "get", Payment)]
    for view, handler, model in declared:
        rows = getattr(view, handler).cache_meta["rows"]
        assert isinstance(rows, Rows) and rows.recall, (view, handler)
        model_admin = admin.site._registry[model]
        obj = model()
        read_only = set(model_admin.get_readonly_fields(RequestFactory().get("/"), obj)) | {"id"}
        fields = {model._meta.get_field(name.removesuffix("_id")).name for name in rows.names if name != "id"}
        assert fields <= read_only, (model, fields - read_only)
