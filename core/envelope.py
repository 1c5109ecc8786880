"""The API envelope (docs/API.md "Envelope"): renderer, pagination and exception
handler. Every JSON response under /api/v1/ goes through these three."""
import logging
import math
from datetime import UTC, datetime

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.paginator import InvalidPage, Paginator
from django.db.models import QuerySet
from django.http import Http404
from django.utils.functional import cached_property
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response

from . import rules
from .middleware import current_request_id
from .representation import Row, Rows, dumps

logger = logging.getLogger("shiftboard.api")

ERROR_CODES = {
    400: "validation_error",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "validation_error",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
    503: "service_unavailable",
}


class Conflict(exceptions.APIException):
    """409: the request is well formed but clashes with the current state."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    """413: the body is over DATA_UPLOAD_MAX_MEMORY_SIZE (Django refuses to read it)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is temporarily unavailable."
    default_code = "service_unavailable"


def is_unique_violation(exc) -> bool:
    """Whether a database ``IntegrityError`` is a unique-constraint violation
    (SQLSTATE 23505 on PostgreSQL; SQLite's message otherwise). Services use it to
    turn a lost insert race into a 409 instead of a 500."""
    sqlstate = getattr(exc.__cause__, "sqlstate", None)  # psycopg
    if sqlstate:
        return sqlstate == "23505"
    return "UNIQUE constraint failed" in str(exc)


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class PageData(dict):
    """Marks a paginated payload: ``{"data": [...], "pagination": {...}}``."""


class ErrorData(dict):
    """Marks an error payload already in envelope shape (without id and time)."""


def envelope_tail() -> dict:
    return {"correlation_id": current_request_id(), "timestamp": _timestamp()}


class EnvelopeJSONRenderer(JSONRenderer):
    """Wraps ``response.data`` in the envelope. A response served from the response
    cache carries ``cached_fragment``: the already-rendered ``"data":…`` (and
    ``"pagination":…``) bytes, which are spliced in without re-serializing."""

    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        renderer_context = renderer_context or {}
        response = renderer_context.get("response")
        if response is None:  # used outside a view (schema, tests)
            return super().render(data, accepted_media_type, renderer_context)
        if response.status_code in (204, 304):
            return b""
        fragment = getattr(response, "cached_fragment", None)
        if fragment is None:
            if isinstance(data, ErrorData):
                return super().render({**data, **envelope_tail()}, accepted_media_type, renderer_context)
            if isinstance(data, PageData):
                inner = {"data": data["data"], "pagination": data["pagination"]}
            else:
                inner = {"data": data}
            if isinstance(inner["data"], (Rows, Row)):
                # JSON primitives only (core/representation.py): orjson, same bytes.
                body = dumps(inner)
            else:
                body = super().render(inner, accepted_media_type, renderer_context)
            fragment = body[1:-1]  # strip the braces: b'"data":…,"pagination":…'
            response.rendered_fragment = fragment
        message = getattr(response, "envelope_message", None)
        tail = super().render(
            {"message": message, **envelope_tail()}, accepted_media_type, renderer_context
        )[1:]
        return b'{"success":true,' + fragment + b"," + tail


class EnvelopeBrowsableAPIRenderer(BrowsableAPIRenderer):
    """The browsable API (DEBUG only) shows the same envelope as JSON clients get."""

    def get_default_renderer(self, view):
        return EnvelopeJSONRenderer()

    def get_raw_data_form(self, data, view, method, request):
        # A POST that takes no body (logout, e-mail code request) has no serializer
        # to prefill the raw-data form with; DRF would assert. Show an empty form.
        try:
            view.get_serializer_class()
        except AssertionError:
            return None
        except AttributeError:  # an APIView without get_serializer_class
            pass
        return super().get_raw_data_form(data, view, method, request)


class CappedCountPaginator(Paginator):
    """A paginator whose COUNT stops at ``count_cap + 1`` rows.

    ``SELECT count(*) FROM (SELECT id ... LIMIT cap+1)`` reads at most cap+1 index
    entries however large the table grows, instead of counting every matching row
    on each request. Below the cap the count is exact; at or above it, ``count`` is
    ``count_cap`` and ``capped`` is True, and pages beyond the cap are not served
    (deep OFFSET pages are slow anyway: narrow the filters instead).
    """

    def __init__(self, object_list, per_page, *, count_cap: int, memo=None, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.count_cap = count_cap
        self.capped = False
        # A cached list's miss: the total kept under its coarse versions (core/cache/counts.py).
        self.memo = memo

    @cached_property
    def count(self) -> int:
        # A page read as plain values (``values_page``) is counted on its model
        # queryset: the columns' joins are not needed to count its rows.
        qs = getattr(self.object_list, "count_source", self.object_list)
        if not isinstance(qs, QuerySet):
            return super().count
        if self.memo is not None:
            known = self.memo.get()
            if known is not None:
                count, self.capped = known
                return count
        # No ordering and only the key (no select_related joins): the cheapest rows
        # to read; the LIMIT bounds the work. (values() is not allowed on a UNION.)
        rows = qs.order_by() if qs.query.combinator else qs.order_by().values("pk")
        found = rows[: self.count_cap + 1].count()
        self.capped = found > self.count_cap
        if self.memo is not None:
            self.memo.put(min(found, self.count_cap), self.capped)
        return min(found, self.count_cap)


def values_page(queryset: QuerySet, *columns) -> "ValuesPage":
    """``queryset.values_list(*columns)`` to page (a hot read's plain row values,
    core/representation.py): each page is read by ``page_values``, and the total
    ``CappedCountPaginator`` counts on ``queryset`` itself: the joins the columns
    add (a job's category and client, say) would only slow the count down."""
    return ValuesPage(queryset, columns)


def page_values(queryset: QuerySet, columns, bottom: int, top: int | None) -> QuerySet:
    """``queryset.values_list(*columns)[bottom:top]``, the same rows in the same
    order, in one query. Where a column is an expression (a ``NameList``: a
    subquery per row), the page's keys are picked first, inside the statement --
    the same filters, order and slice, without the joins and the expressions --
    and the columns are read for those rows only: PostgreSQL computes a select
    list for every row it steps over, so an OFFSET of 80 would run the subquery
    100 times for a page of 20 (a DISTINCT queryset, whose keys cannot be picked
    that way, is read as it is)."""
    values = queryset.prefetch_related(None)
    if not any(hasattr(column, "resolve_expression") for column in columns) or values.query.distinct:
        return values.values_list(*columns)[bottom:top]
    keys = values.values("pk")[bottom:top]
    return values.filter(pk__in=keys).values_list(*columns)


class ValuesPage:
    """``values_page``'s answer: what the paginator slices (each slice is
    ``page_values``), counted on ``count_source``."""

    def __init__(self, queryset: QuerySet, columns):
        self.count_source = queryset
        self.columns = columns
        self.ordered = queryset.ordered

    def __getitem__(self, window: slice) -> QuerySet:
        return page_values(self.count_source, self.columns, window.start or 0, window.stop)

    def __iter__(self):
        return iter(self.count_source.prefetch_related(None).values_list(*self.columns))


class EnvelopePagination(PageNumberPagination):
    """``?page=`` from 1 and ``?per_page=`` (default 20, at most 100; more is
    clamped to 100, less than 1 is a 400). A page past the end is a 404.

    The total is counted up to ``count_cap`` rows (see ``CappedCountPaginator``):
    ``pagination.total_items_capped`` says whether the list goes on beyond it."""

    page_size = 20
    page_size_query_param = "per_page"
    max_page_size = 100
    count_cap = 10_000

    def django_paginator_class(self, object_list, per_page, **kwargs):
        memo = getattr(self, "count_memo", None)
        return CappedCountPaginator(object_list, per_page, count_cap=self.count_cap, memo=memo, **kwargs)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise exceptions.ValidationError({"per_page": ["Must be an integer between 1 and 100."]}) from None
        if value < 1:
            raise exceptions.ValidationError({"per_page": ["Must be an integer between 1 and 100."]})
        return min(value, self.max_page_size)

    def paginate_queryset(self, queryset, request, view=None):
        raw = request.query_params.get(self.page_query_param, "1")
        try:
            number = int(raw)
            if number < 1:
                raise ValueError
        except (TypeError, ValueError):
            raise exceptions.ValidationError({"page": ["Must be an integer of at least 1."]}) from None
        # No page beyond the count cap is served (see CappedCountPaginator); a huge
        # number would otherwise reach the database as an OFFSET beyond BIGINT.
        if number > self.count_cap:
            raise exceptions.NotFound("That page is past the end of the list.")
        from .cache.counts import current

        self.count_memo = current(request)
        try:
            return super().paginate_queryset(queryset, request, view)
        except exceptions.NotFound:
            raise exceptions.NotFound("That page is past the end of the list.") from None

    def get_paginated_response(self, data):
        page = self.page
        paginator = page.paginator
        total = paginator.count
        per_page = paginator.per_page
        return Response(
            PageData(
                data=data,
                pagination={
                    "page": page.number,
                    "per_page": per_page,
                    "total_items": total,
                    "total_pages": max(1, math.ceil(total / per_page)) if total else 0,
                    "has_next": page.has_next(),
                    "has_prev": page.has_previous(),
                    # Only on a capped count, so the usual shape stays the one docs/API.md shows.
                    **({"total_items_capped": True} if getattr(paginator, "capped", False) else {}),
                },
            )
        )

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.page_query_param,
                "in": "query",
                "required": False,
                "description": "The page, from 1 (default 1). A page past the end is a 404.",
                "schema": {"type": "integer"},
            },
            {
                "name": self.page_size_query_param,
                "in": "query",
                "required": False,
                "description": f"Items per page, default {self.page_size}; more than "
                f"{self.max_page_size} is taken as {self.max_page_size}, less than 1 is a 400.",
                "schema": {"type": "integer"},
            },
        ]

    def get_paginated_response_schema(self, schema):
        # The OpenAPI description of the page envelope lives with the others in
        # core.schema (imported here: core.schema imports this module).
        from .schema import paginated_envelope_schema

        return paginated_envelope_schema(schema)


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            msg = _first_message(value)
            return msg if key in ("non_field_errors", "detail") else f"{key}: {msg}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def error_payload(status_code: int, message: str, details=None) -> ErrorData:
    return ErrorData(
        success=False,
        error=ERROR_CODES.get(status_code, "server_error" if status_code >= 500 else "validation_error"),
        message=message,
        details=details if details is not None else {},
    )


def api_exception_for(error: rules.RuleError) -> exceptions.APIException:
    """The API exception (status and detail) of a domain error (``core.rules``)."""
    if isinstance(error, rules.Invalid):
        return exceptions.ValidationError({error.field or "non_field_errors": [error.message]})
    if isinstance(error, rules.NotAllowed):
        return exceptions.PermissionDenied(error.message)
    if isinstance(error, rules.Missing):
        return exceptions.NotFound(error.message)
    if isinstance(error, rules.Unavailable):
        return ServiceUnavailable(error.message)
    return Conflict(error.message)


def envelope_exception_handler(exc, context):
    """Every error as ``{"success": false, "error", "message", "details", …}``.
    Unexpected exceptions become a 500 without any exception text."""
    rule_details = {}
    if isinstance(exc, rules.RuleError):
        rule_details = exc.details
        exc = api_exception_for(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, InvalidPage):
        exc = exceptions.NotFound()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    # Imported here: rest_framework.views reads DEFAULT_RENDERER_CLASSES (this module)
    # at import time, so a module-level import is circular when this module loads first.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        return Response(
            error_payload(500, "An unexpected error occurred. Quote the correlation id when reporting it."),
            status=500,
        )
    detail = exc.detail if isinstance(exc, exceptions.APIException) else response.data
    if isinstance(exc, exceptions.ValidationError):
        details = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        message = _first_message(details)
    else:
        details = rule_details
        message = _first_message(detail)
    response.data = error_payload(response.status_code, message, details)
    return response
