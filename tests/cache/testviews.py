"""A tiny URLconf with test-only views wrapped by ``@cached_response``, so the cache
layer can be tested on its own (``@pytest.mark.urls("tests.cache.testviews")``).

``STATE`` is what the views serve; ``BUILDS`` counts how often a handler really
ran (a hit does not run it). ``HOOKS`` lets a test act in the middle of a build.
"""
import threading
import time

from django.urls import path
from rest_framework.exceptions import NotFound
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


urlpatterns = [
    path("t/thing/", ThingView.as_view()),
    path("t/mine/", MineView.as_view()),
    path("t/auth-only/", AuthOnlyView.as_view()),
    path("t/missing/", MissingView.as_view()),
    path("t/message/", MessageView.as_view()),
    path("t/categories/", CategoryNamesView.as_view()),
]
