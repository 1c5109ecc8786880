"""Issue 10, class 2 and class 3 (a): one resource, one cache identity, whatever
the spelling of its query. Every filter of every cached list is read through
several spellings of one value (numbers, choices, ids, text, ordering, repeated
parameters, parameters the view does not read): the first is a MISS, every other
one a HIT of the same entry (one key in the cache), and after a write every
spelling shows it. ``tests/cache/testviews.py``'s FilteredView covers the kinds no
API list has (boolean, date, time, date-time, multiple choice).
``transaction=True``: bumps run in ``on_commit``, as in production."""
import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from core import cache as cache_layer
from core.cache import keys as cache_keys
from core.cache import query
from tests.accounts.factories import UserFactory, WorkerUserFactory
from tests.cache import testviews
from tests.conftest import auth_client
from tests.jobs.factories import ApplicationFactory, CategoryFactory, JobFactory
from tests.payments.factories import PaymentFactory
from tests.ratings.factories import ReviewFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _entries() -> set[str]:
    return set(cache_layer.backend().scan_prefix(cache_keys.RESPONSE_PREFIX))


def _get(client, url):
    response = client.get(url)
    assert response.status_code == 200, (url, response.content[:300])
    return response


def _one_entry_per_group(client, base: str, groups: list[list[str]]) -> None:
    """Each group: spellings of one query. The first is a MISS, the others HITs,
    and the whole lot leaves one entry per group."""
    before = _entries()
    for group in groups:
        first, *others = group
        assert _get(client, base + first)["X-Cache"] == "MISS", first
        for other in others:
            assert _get(client, base + other)["X-Cache"] == "HIT", (first, other)
    assert len(_entries() - before) == len(groups), groups


def _all_show(client, base: str, groups: list[list[str]], text: str) -> None:
    for group in groups:
        for spelling in group:
            assert text in _get(client, base + spelling).content.decode(), (spelling, text)


def _rename(user, name: str) -> None:
    user.first_name = name
    user.save()


# --- the public job list: every filter of JobFilter, pagination, ignored parameters ---


def test_job_list_one_entry_per_query_whatever_the_spelling():
    category = CategoryFactory(slug="kitchen")
    job = JobFactory(title="Before", city="Paris", rate="10.00", category=category, description="cook")
    JobFactory(title="Other", city="Paris", rate="10.00", category=category, description="cook")
    pk, client_id = job.pk, job.client_id
    groups = [
        # no filter applied: no query, an empty value, parameters the list does not read
        ["", "?status=", "?_x=1", "?_x=1&_y=2", "?format=json", "?search=%20", "?page=1&per_page=20"],
        ["?status=open", "?status=open&status=open", "?status=filled&status=open", "?_x=9&status=open"],
        ["?min_rate=10", "?min_rate=10.0", "?min_rate=010", "?min_rate=10.00", "?min_rate=1e1"],
        ["?max_rate=99.5", "?max_rate=99.50", "?max_rate=0099.5"],
        [f"?client={client_id}", f"?client=0{client_id}", f"?client=%20{client_id}"],
        ["?city=Paris", "?city=Paris&city=Paris", "?city=%20Paris", "?city=paris", "?city=PARIS"],
        ["?category=kitchen", "?category=kitchen&_x=1"],
        ["?search=cook", "?search=%20cook%20", "?search=x&search=cook"],
        ["?ordering=rate", "?ordering=rate&_x=1", "?ordering=-rate&ordering=rate"],
        ["?status=open&min_rate=10", "?min_rate=10.0&status=open"],
        ["?per_page=1&page=2", "?page=02&per_page=01", "?page=%2B2&per_page=1&_x=1"],
        ["?per_page=100", "?per_page=5000", "?per_page=0100"],
    ]
    anon = APIClient()
    _one_entry_per_group(anon, "/api/v1/jobs/", groups)
    response = auth_client(job.client).patch(f"/api/v1/jobs/{pk}/", {"title": "After"}, format="json")
    assert response.status_code == 200
    _all_show(anon, "/api/v1/jobs/", [g for g in groups if "page=2" not in g[0]], '"After"')


def test_an_invalid_value_is_a_400_and_stores_nothing():
    JobFactory()
    before = _entries()
    for url in ("?min_rate=ten", "?status=nope", "?client=0", "?ordering=title", "?page=0", "?per_page=x"):
        assert APIClient().get("/api/v1/jobs/" + url).status_code == 400, url
    assert _entries() == before


def test_ignored_parameters_add_no_entries():
    job = JobFactory()
    anon = APIClient()
    urls = ["/api/v1/jobs/", f"/api/v1/jobs/{job.pk}/", "/api/v1/categories/", f"/api/v1/users/{job.client_id}/"]
    for url in urls:
        _get(anon, url)
    before = _entries()
    for n in range(5):
        for url in urls:
            assert _get(anon, f"{url}?_x={n}&page=1&status=open&per_page=3")["X-Cache"] in ("HIT", "MISS")
    # The lists read page/per_page (and the job list status): those are real
    # queries. The detail views read nothing: every one of those was a hit.
    for n in range(5):
        for url in urls[1:2] + urls[3:]:
            assert _get(anon, f"{url}?_x={n}&page=7&status=open")["X-Cache"] == "HIT", url
    new = _entries() - before
    # one entry per list for "page=1&status=open&per_page=3" (the job list) or
    # "per_page=3" (categories), none for the details
    assert len(new) == 2, new


# --- private lists: applications, a job's applications, payments; public reviews ------


def test_private_lists_one_entry_per_status_whatever_the_spelling():
    worker = WorkerUserFactory(first_name="Ann")
    application = ApplicationFactory(worker=worker)
    owner = application.job.client
    groups = [
        ["?status=pending", "?status=pending&status=pending", "?status=accepted&status=pending", "?status=pending&_x=1"],
        ["", "?status=", "?_x=1"],
    ]
    as_worker, as_owner = auth_client(worker), auth_client(owner)
    _one_entry_per_group(as_worker, "/api/v1/applications/", groups)
    _one_entry_per_group(as_owner, f"/api/v1/jobs/{application.job_id}/applications/", groups)
    _rename(worker, "Bea")
    _all_show(as_owner, f"/api/v1/jobs/{application.job_id}/applications/", groups, "Bea")


def test_payment_lists_one_entry_per_status_whatever_the_spelling():
    recipient = WorkerUserFactory(first_name="Ann")
    payment = PaymentFactory(recipient=recipient)
    groups = [
        [f"?status={payment.status}", f"?status=failed&status={payment.status}", f"?status={payment.status}&_x=1"],
        ["", "?status=", "?_x=1", "?page=01"],
    ]
    payer = auth_client(payment.payer)
    _one_entry_per_group(payer, "/api/v1/payments/", groups)
    _one_entry_per_group(payer, f"/api/v1/users/{payment.payer_id}/payments/", groups)
    _rename(recipient, "Bea")
    _all_show(payer, "/api/v1/payments/", groups, "Bea")
    _all_show(payer, f"/api/v1/users/{payment.payer_id}/payments/", groups, "Bea")


def test_review_list_one_entry_per_id_whatever_the_spelling():
    review = ReviewFactory()
    reviewer = review.reviewer
    groups = [
        [f"?reviewed={review.reviewed_id}", f"?reviewed=00{review.reviewed_id}", f"?reviewed={review.reviewed_id}&_x=1"],
        [f"?reviewer={reviewer.pk}&job={review.job_id}", f"?job=0{review.job_id}&reviewer={reviewer.pk}"],
        ["", "?reviewed=", "?_x=1"],
    ]
    anon = APIClient()
    _one_entry_per_group(anon, "/api/v1/reviews/", groups)
    _rename(reviewer, "Zed")
    _all_show(anon, "/api/v1/reviews/", groups, "Zed")


# --- what each cached handler reads ----------------------------------------------------


def test_every_cached_handler_reads_what_its_key_keeps():
    """The table of what each cached GET reads from the query string (its FilterSet,
    whether it pages); a new cached endpoint must be added here on purpose."""
    from tests.routes import url_patterns

    expected = {
        "api/v1/users/me/": (None, False),
        "api/v1/users/<id:pk>/": (None, False),
        "api/v1/skills/": (None, True),
        "api/v1/users/me/saved-jobs/": (None, True),
        "api/v1/categories/": (None, True),
        "api/v1/jobs/": ("JobFilter", True),
        "api/v1/jobs/<id:pk>/": (None, False),
        "api/v1/jobs/<id:pk>/applications/": ("ApplicationFilter", True),
        "api/v1/applications/": ("ApplicationFilter", True),
        "api/v1/payments/": ("PaymentFilter", True),
        "api/v1/payments/<id:pk>/": (None, False),
        "api/v1/users/me/balance/": (None, False),
        "api/v1/users/<id:pk>/payments/": ("PaymentFilter", True),
        "api/v1/reviews/": ("ReviewFilter", True),
        "api/v1/users/<id:pk>/reviews/": (None, True),
        "api/v1/users/<id:pk>/reviews-given/": (None, True),
    }
    found = {}
    for route, pattern in url_patterns():
        callback = pattern.callback
        if route.startswith("api/v1/") and getattr(callback, "cls", None) is not None:
            reader = query.reader_for(callback)
            if reader is not None:
                found[route] = (getattr(reader.filterset, "__name__", None), reader.pagination is not None)
    assert found == expected


def test_pages_are_read_where_the_key_says():
    """Behind the table: a handler the key says pages answers with a pagination
    block, the others do not."""
    job = JobFactory()
    user = job.client
    me = auth_client(user)
    for url, paged in (
        ("/api/v1/jobs/", True),
        (f"/api/v1/jobs/{job.pk}/", False),
        ("/api/v1/users/me/", False),
        ("/api/v1/users/me/balance/", False),
        (f"/api/v1/users/{user.pk}/", False),
        (f"/api/v1/users/{user.pk}/reviews/", True),
        ("/api/v1/users/me/saved-jobs/", True),
        ("/api/v1/categories/", True),
        ("/api/v1/skills/", True),
    ):
        body = _get(me, url).json()
        assert ("pagination" in body) == paged, url


# --- the kinds of filter no API list has yet (tests/cache/testviews.py) ---------------


@pytest.mark.urls("tests.cache.testviews")
def test_every_kind_of_filter_value_has_one_spelling():
    testviews.reset()
    groups = [
        ["?flag=true", "?flag=True", "?flag=1", "?flag=TRUE&_x=1"],
        ["?flag=false", "?flag=False", "?flag=0"],
        ["?day=2026-03-04", "?day=2026-03-04&day=2026-03-04", "?day=%202026-03-04"],
        ["?since=2026-03-04T05:06:07Z", "?since=2026-03-04T05:06:07%2B00:00", "?since=2026-03-04T06:06:07%2B01:00"],
        ["?at=05:06", "?at=05:06:00", "?at=5:06"],
        ["?kind=a&kind=b", "?kind=b&kind=a", "?kind=a&kind=b&kind=a"],
        ["?size=1.5", "?size=1.50", "?size=01.5", "?size=15e-1"],
        ["?count=0", "?count=-0", "?count=0.0"],
        ["?name=x", "?name=%20x%20"],
        ["", "?flag=", "?flag=unknown", "?day=", "?_x=1"],
        ["?page=2&per_page=7", "?per_page=07&page=2", "?page=%202&per_page=7"],
    ]
    client = APIClient()
    _one_entry_per_group(client, "/t/filtered/", groups)
    # each entry holds what every one of its spellings would have built
    first = {g[0]: client.get("/t/filtered/" + g[0]).json()["data"] for g in groups}
    cache_layer.bump_now({"things"})
    for group in groups:
        for spelling in group:
            cache_layer.bump_now({"things"})  # a fresh build of each spelling
            built = client.get("/t/filtered/" + spelling)
            assert built["X-Cache"] == "MISS"
            assert built.json()["data"] == first[group[0]], spelling
    assert client.get("/t/filtered/?flag=yes&flag=maybe&size=x").status_code == 400


@pytest.mark.urls("tests.cache.testviews")
def test_extra_params_setting_keeps_a_parameter_in_the_key():
    """RESPONSE_CACHE_KEY_EXTRA_PARAMS (the bench's ``_b``): each value its own entry."""
    testviews.reset()
    client = APIClient()
    with override_settings(RESPONSE_CACHE_KEY_EXTRA_PARAMS=("_b",)):
        assert client.get("/t/filtered/?_b=1")["X-Cache"] == "MISS"
        assert client.get("/t/filtered/?_b=2")["X-Cache"] == "MISS"
        assert client.get("/t/filtered/?_b=2&_x=3")["X-Cache"] == "HIT"
        assert client.get("/t/filtered/?flag=1&_b=2")["X-Cache"] == "MISS"
        assert client.get("/t/filtered/?flag=true&_b=2")["X-Cache"] == "HIT"
    assert client.get("/t/filtered/?_b=3")["X-Cache"] == "MISS"
    assert client.get("/t/filtered/?_b=4")["X-Cache"] == "HIT"


@pytest.mark.urls("tests.cache.testviews")
def test_a_plain_apiview_keeps_its_whole_query():
    """A handler of a plain APIView may read any parameter (ThingView answers with
    its query): without a declared Query, nothing is dropped from its key."""
    testviews.reset()
    client = APIClient()
    assert client.get("/t/thing/?a=1")["X-Cache"] == "MISS"
    assert client.get("/t/thing/?a=2")["X-Cache"] == "MISS"
    assert client.get("/t/thing/?a=1")["X-Cache"] == "HIT"


def test_long_query_strings_are_not_remembered():
    """The per-process memory of canonical forms is bounded: a long query string is
    canonicalized each time, and the LRU has a maximum size."""
    JobFactory()
    query._canonical_lru.cache_clear()
    long = "?search=" + "x" * 150 + "&_pad=" + "y" * (query.LRU_QUERY_CHARS + 1)
    assert _get(APIClient(), "/api/v1/jobs/" + long)["X-Cache"] == "MISS"
    assert _get(APIClient(), "/api/v1/jobs/?search=" + "x" * 150)["X-Cache"] == "HIT"
    info = query._canonical_lru.cache_info()
    assert info.maxsize == query.LRU_SIZE
    assert info.currsize == 1  # only the short one


def test_unknown_user_is_not_confused_with_spellings():
    """Distinct values stay distinct entries (the canonical form is not lossy)."""
    a, b = UserFactory(), UserFactory()
    JobFactory(client=a)
    anon = APIClient()
    assert _get(anon, f"/api/v1/jobs/?client={a.pk}")["X-Cache"] == "MISS"
    assert _get(anon, f"/api/v1/jobs/?client={b.pk}")["X-Cache"] == "MISS"
    assert _get(anon, "/api/v1/jobs/?min_rate=10")["X-Cache"] == "MISS"
    assert _get(anon, "/api/v1/jobs/?min_rate=10.01")["X-Cache"] == "MISS"
    assert _get(anon, "/api/v1/jobs/?city=Paris")["X-Cache"] == "MISS"
    assert _get(anon, "/api/v1/jobs/?city=paris")["X-Cache"] == "HIT"  # iexact: ASCII case is one value
    # Beyond ASCII, case stays part of the key (SQLite's iexact folds ASCII only).
    assert _get(anon, "/api/v1/jobs/?city=%C3%89vry")["X-Cache"] == "MISS"
    assert _get(anon, "/api/v1/jobs/?city=%C3%A9vry")["X-Cache"] == "MISS"
