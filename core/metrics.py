"""The Prometheus endpoint (``/metrics``, outside the public API path), guarded.

The metrics themselves come from django-prometheus (request latency and counts by
view, database queries through its database backend wrappers) and from
``core.cache`` (``shiftboard_response_cache_total``: response cache hit/miss by
view). Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR (``make
serve`` does): each worker writes its samples there and this view aggregates them.

Who may read it, as configured by environment variables only: a caller whose
socket address (``REMOTE_ADDR``) is in ``METRICS_ALLOWED_NETWORKS`` (CIDRs;
loopback by default only with ``DEBUG=1``), or any caller sending
``Authorization: Bearer <METRICS_TOKEN>``. No header a client can send
(``X-Forwarded-For``, ``Forwarded``, ...) grants or denies anything: behind a
proxy on the same host every caller is loopback, so such a deployment lists no
loopback network and uses the token. Everyone else gets a 404, as if there were
nothing here.
"""
import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponseNotFound
from django.views.decorators.cache import never_cache
from django_prometheus.exports import ExportToDjangoView


def _networks():
    return [ipaddress.ip_network(n.strip(), strict=False) for n in settings.METRICS_ALLOWED_NETWORKS if n.strip()]


def _from_allowed_network(request) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in _networks())


def _has_token(request) -> bool:
    expected = settings.METRICS_TOKEN
    if not expected:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


@never_cache
def metrics_view(request):
    """Prometheus text format for allowed callers, 404 for anyone else."""
    if not (_from_allowed_network(request) or _has_token(request)):
        return HttpResponseNotFound(b"Not found.", content_type="text/plain")
    return ExportToDjangoView(request)
