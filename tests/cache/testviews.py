"""A tiny URLconf with test-only views wrapped by ``@cached_response``, so the cache
layer can be tested on its own (``@pytest.mark.urls("tests.cache.testviews")``).

``STATE`` is what the views serve; ``BUILDS`` counts how often a handler really
ran (a hit does not run it). ``HOOKS`` lets a test act in the middle of a build.
"""
import datetime
import decimal
import threading
import time

import django_filters
from django.urls import path
from django_filters import rest_framework as drf_filters
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.cache import cached_response
from jobs.models import Category

STATE = {"value": 1, "sleep": 0.0}
BUILDS = {"count": 0}
HOOKS = {"after_query": None}
_lock = threading.Lock()


def reset():
    STATE.update(value=1, sleep=0.0)
    BUILDS["count"] = 0
    HOOKS["after_query"] = None


def _built():
    with _lock:
        BUILDS["count"] += 1
    if STATE["sleep"]:
        time.sleep(STATE["sleep"])


def thing_scopes(view, request, **kwargs):
    return request.query_params.getlist("scope") or ["things"]


class ThingView(APIView):
    """Public: ``{value, query}``; depends on the scopes named by ``?scope=``."""

    authentication_classes = []
    permission_classes = []

    @cached_response(thing_scopes)
    def get(self, request):
        _built()
        return Response({"value": STATE["value"], "query": dict(request.query_params.lists())})


class MineView(APIView):
    """Private: answers with the caller's id and e-mail."""

    @cached_response(lambda view, request, **kw: ["things"], private=True)
    def get(self, request):
        _built()
        user = request.user
        return Response({"id": user.pk, "email": getattr(user, "email", None), "value": STATE["value"]})


class AuthOnlyView(APIView):
    """Public data behind a permission: a hit must not skip the check."""

    permission_classes = [IsAuthenticated]

    @cached_response(lambda view, request, **kw: ["things"])
    def get(self, request):
        _built()
        return Response({"value": STATE["value"]})


class MissingView(APIView):
    """Always 404 (from inside the handler, like ``get_object``)."""

    authentication_classes = []
    permission_classes = []

    @cached_response(lambda view, request, **kw: ["things"])
    def get(self, request):
        _built()
        raise NotFound()


class MessageView(APIView):
    """A response carrying an envelope message (not cached: the entry has no room for it)."""

    authentication_classes = []
    permission_classes = []

    @cached_response(lambda view, request, **kw: ["things"])
    def get(self, request):
        _built()
        response = Response({"value": STATE["value"]})
        response.envelope_message = "hello"
        return response


class CategoryNamesView(APIView):
    """Reads the database: every category name (depends on scope ``categories``)."""

    authentication_classes = []
    permission_classes = []

    @cached_response(lambda view, request, **kw: ["categories"])
    def get(self, request):
        _built()
        names = sorted(Category.objects.values_list("name", flat=True))
        if HOOKS["after_query"]:
            hook, HOOKS["after_query"] = HOOKS["after_query"], None
            hook()
        return Response({"names": names})


class KindsFilter(django_filters.FilterSet):
    """One filter of every kind a FilterSet may clean (none of them filters:
    the view answers with the cleaned values)."""

    flag = drf_filters.BooleanFilter(method="keep")
    day = django_filters.DateFilter(method="keep")
    since = django_filters.IsoDateTimeFilter(method="keep")
    at = django_filters.TimeFilter(method="keep")
    kind = django_filters.MultipleChoiceFilter(choices=[("a", "a"), ("b", "b")], method="keep")
    size = django_filters.NumberFilter(method="keep")
    count = django_filters.NumberFilter(method="keep", field_name="count")
    name = django_filters.CharFilter(method="keep")

    class Meta:
        model = Category
        fields: list[str] = []

    def keep(self, queryset, name, value):
        return queryset


class FilteredView(GenericAPIView):
    """Public, filtered by ``KindsFilter`` (an invalid value is a 400), paginated:
    answers with the values the FilterSet cleaned and the page it read."""

    authentication_classes = []
    permission_classes = []
    filterset_class = KindsFilter
    queryset = Category.objects.all()

    @cached_response(lambda view, request, **kw: ["things"])
    def get(self, request):
        _built()
        self.filter_queryset(self.get_queryset())  # a 400 for an invalid value
        form = KindsFilter(request.query_params).form
        form.is_valid()
        # As a database compares them: a date-time is an instant (UTC), a multiple choice a set,
        # a number its value.
        applied = {
            k: str(
                v.astimezone(datetime.UTC) if isinstance(v, datetime.datetime)
                else sorted(set(v)) if isinstance(v, list)  # MultipleChoiceFilter: a set
                else float(v) + 0.0 if isinstance(v, decimal.Decimal)  # a number (no -0)
                else v
            )
            for k, v in form.cleaned_data.items()
            if v not in (None, "", [])
        }
        page = self.paginator.get_page_size(request), int(request.query_params.get("page", "1"))
        return Response({"applied": applied, "page": list(page), "value": STATE["value"]})


urlpatterns = [
    path("t/filtered/", FilteredView.as_view()),
    path("t/thing/", ThingView.as_view()),
    path("t/mine/", MineView.as_view()),
    path("t/auth-only/", AuthOnlyView.as_view()),
    path("t/missing/", MissingView.as_view()),
    path("t/message/", MessageView.as_view()),
    path("t/categories/", CategoryNamesView.as_view()),
]
