"""The project's URLs plus the Debug Toolbar's, for tests that switch the toolbar on."""
from django.urls import include, path

from config.urls import handler400, handler404, handler500  # noqa: F401
from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns, path("__debug__/", include("debug_toolbar.urls"))]
