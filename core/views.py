"""Health check: database and cache, without the response cache."""
import logging

from django.core.cache import cache
from django.db import connection
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from . import replicas
from .envelope import error_payload

logger = logging.getLogger("shiftboard.health")


class HealthView(APIView):
    """Whether the service can answer: ``200`` with ``database: ok`` and ``cache:
    ok`` (or ``unavailable``: the API still answers, only slower); ``503`` when the
    database is down. With read replicas, ``replicas`` gives the lag of each. Anyone
    may call it."""

    authentication_classes = []
    permission_classes = []

    @extend_schema(
        responses={
            200: inline_serializer(
                "Health",
                {
                    "database": serializers.CharField(),
                    "cache": serializers.CharField(),
                    "replicas": serializers.DictField(
                        required=False, help_text="Per read replica (when configured): status (ok, unavailable, not_replicating), lag_bytes, lag_seconds."
                    ),
                },
            ),
            503: OpenApiResponse(description="The database is unavailable (`details` says which service is down)."),
        }
    )
    def get(self, request):
        result = {"database": "ok", "cache": "ok"}
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception as exc:  # noqa: BLE001 - any database failure means "down"
            logger.warning("health: database unavailable: %s", exc)
            result["database"] = "unavailable"
        try:
            cache.set("health:ping", 1, timeout=5)
            if cache.get("health:ping") != 1:
                result["cache"] = "unavailable"
        except Exception as exc:  # noqa: BLE001
            logger.warning("health: cache unavailable: %s", exc)
            result["cache"] = "unavailable"
        if replicas.enabled():
            # A replica's lag or outage is reported, never fatal: reads fall back to the primary.
            result["replicas"] = replicas.lag_report()
        if result["database"] != "ok":
            payload = error_payload(503, "The database is unavailable.", result)
            return Response(payload, status=503)
        return Response(result)


def _json_error(request, status: int, message: str):
    from django.http import JsonResponse

    from .envelope import envelope_tail

    return JsonResponse({**error_payload(status, message), **envelope_tail()}, status=status)


def bad_request(request, exception=None):
    return _json_error(request, 400, "The request could not be understood.")


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return _json_error(request, 404, "Not found.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request):
    return _json_error(request, 500, "An unexpected error occurred. Quote the correlation id when reporting it.")
