"""Root URLs: the API under /api/v1/, its schema and docs, the admin, metrics."""
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts.views import admin_login
from core.metrics import metrics_view
from core.views import HealthView

api_v1 = [
    path("health/", HealthView.as_view(), name="health"),
    path("", include("accounts.urls")),
    path("", include("jobs.urls")),
    path("", include("payments.urls")),
    path("", include("ratings.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema", template_name="core/redoc.html"), name="redoc"),
    # Before the admin's own URLs: its login throttled like the API login.
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    # Prometheus, off the API path; loopback or METRICS_TOKEN only (core/metrics.py).
    path("metrics", metrics_view, name="prometheus-django-metrics"),
]

if settings.DEBUG and "debug_toolbar" in settings.INSTALLED_APPS:
    urlpatterns.append(path("__debug__/", include("debug_toolbar.urls")))

handler400 = "core.views.bad_request"
handler404 = "core.views.not_found"
handler500 = "core.views.server_error"
