"""core.filters.FilterBackend: a query that names none of a FilterSet's filters
leaves the queryset as it is, without building the FilterSet; any filter named
(an invalid value included) goes through the FilterSet as before."""
import django_filters
import pytest
from django.http import QueryDict

from core.filters import filterset_applies
from jobs.filters import ApplicationFilter, JobFilter
from jobs.models import Job
from tests.jobs.factories import JobFactory

pytestmark = pytest.mark.django_db


class RequiredCityFilter(django_filters.FilterSet):
    city = django_filters.CharFilter(field_name="city", required=True)

    class Meta:
        model = Job
        fields: list[str] = []


@pytest.mark.parametrize(
    ("query", "applies"),
    [
        ("", False),
        ("page=2&per_page=5", False),
        ("_b=123&unknown=1", False),
        ("status=open", True),
        ("status=", True),  # an empty value: the FilterSet decides (it filters nothing)
        ("status=nonsense", True),  # the FilterSet answers the 400
        ("ordering=-rate&page=2", True),
        ("search=cook", True),
    ],
)
def test_filterset_applies_names_the_filters(query, applies):
    assert filterset_applies(JobFilter, QueryDict(query)) is applies


def test_a_required_filter_always_runs_the_filterset():
    assert filterset_applies(RequiredCityFilter, QueryDict("")) is True
    assert filterset_applies(ApplicationFilter, QueryDict("page=1")) is False


def _built(monkeypatch, cls):
    built = []
    original = cls.__init__

    def spy(self, *args, **kwargs):
        built.append(cls)
        original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__init__", spy)
    return built


def test_plain_list_builds_no_filterset_and_lists_every_job(anon, monkeypatch):
    jobs = [JobFactory(city="Berlin"), JobFactory(city="Munich")]
    built = _built(monkeypatch, JobFilter)
    # The cache's key reads the FilterSet's form once per process (core/cache/query.py).
    assert anon.get("/api/v1/jobs/?per_page=1").status_code == 200
    built.clear()
    response = anon.get("/api/v1/jobs/?per_page=5")
    assert response.status_code == 200
    assert response["X-Cache"] == "MISS"
    assert {row["id"] for row in response.json()["data"]} == {job.pk for job in jobs}
    assert built == []

    response = anon.get("/api/v1/jobs/?city=berlin")
    assert [row["id"] for row in response.json()["data"]] == [jobs[0].pk]
    assert built  # the FilterSet ran for the named filter

    response = anon.get("/api/v1/jobs/?status=nonsense")
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
