"""Routes of the jobs app (docs/API.md "Endpoints"): categories, jobs, applications,
and the caller's saved jobs under /users/me/."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import ApplicationViewSet, CategoryViewSet, JobViewSet, SavedJobListView

# Path converters (``<id:pk>``, core/converters.py) instead of regexes.
router = SimpleRouter(use_regex_path=False)
router.register("categories", CategoryViewSet, basename="category")
router.register("jobs", JobViewSet, basename="job")
router.register("applications", ApplicationViewSet, basename="application")

urlpatterns = [
    path("users/me/saved-jobs/", SavedJobListView.as_view(), name="saved-jobs"),
    *router.urls,
]
