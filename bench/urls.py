"""Bench URL configuration: Shiftboard exactly as config.urls mounts it (API at
/api/v1/), plus the baselines, each under its own prefix, and the floor."""
from django.urls import include, path
from rest_framework.routers import SimpleRouter

from config.urls import handler400, handler404, handler500  # noqa: F401
from config.urls import urlpatterns as shiftboard_urlpatterns

from . import baselines, views


def _baseline_routes(job_viewset, user_viewset):
    router = SimpleRouter()
    router.register("jobs", job_viewset, basename="job")
    router.register("users", user_viewset, basename="user")
    return router.urls


urlpatterns = [
    path(
        "bench/naive/",
        include((_baseline_routes(baselines.NaiveJobViewSet, baselines.NaiveUserViewSet), "naive")),
    ),
    path(
        "bench/tuned/",
        include((_baseline_routes(baselines.TunedJobViewSet, baselines.TunedUserViewSet), "tuned")),
    ),
    # The same views as naive: the bench middleware turns cachalot on under this prefix.
    path(
        "bench/cachalot/",
        include((_baseline_routes(baselines.NaiveJobViewSet, baselines.NaiveUserViewSet), "cachalot")),
    ),
    path("bench/floor/", views.floor, name="bench-floor"),
    path("bench/slow-query-hook/", views.slow_query_hook, name="bench-slow-query-hook"),
    *shiftboard_urlpatterns,
]
