"""Routes of the jobs app (API.md "Endpoints"): categories, jobs, applications,
and the caller's saved jobs under /users/me/."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import ApplicationViewSet, CategoryViewSet, JobViewSet, SavedJobListView

router = SimpleRouter()
router.register("categories", CategoryViewSet, basename="category")
router.register("jobs", JobViewSet, basename="job")
router.register("applications", ApplicationViewSet, basename="application")

urlpatterns = [
    path("users/me/saved-jobs/", SavedJobListView.as_view(), name="saved-jobs"),
    *router.urls,
]
