"""The Prometheus endpoint (``/metrics``, outside the public API path), guarded.

The metrics themselves come from django-prometheus (request latency and counts by
view, database queries through its database backend wrappers) and from
``core.cache`` (``shiftboard_response_cache_total``: response cache hit/miss by
view). Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR (``make
serve`` does): each worker writes its samples there and this view aggregates them.

Who may read it: a loopback caller that did not come through a proxy (a proxy on
the same host makes every request loopback, so any ``X-Forwarded-For`` /
``Forwarded`` header disqualifies), or any caller sending ``Authorization: Bearer
<METRICS_TOKEN>``. Everyone else gets a 404, as if there were nothing here.
"""
import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponseNotFound
from django.views.decorators.cache import never_cache
from django_prometheus.exports import ExportToDjangoView

_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def _is_direct_loopback(request) -> bool:
    if any(request.META.get(h) for h in _PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _has_token(request) -> bool:
    expected = settings.METRICS_TOKEN
    if not expected:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


@never_cache
def metrics_view(request):
    """Prometheus text format for allowed callers, 404 for anyone else."""
    if not (_is_direct_loopback(request) or _has_token(request)):
        return HttpResponseNotFound(b"Not found.", content_type="text/plain")
    return ExportToDjangoView(request)
