"""Payment endpoints (docs/API.md): thin views over ``PaymentQuerySet`` and
``payments.services``. Every GET is cached per caller (``private=True``) with the
scopes of ``payments.cache``; only writes are throttled (scope ``payments``)."""
from decimal import Decimal

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.cache import Rows, cached_response
from core.filters import ListOnlyFilterMixin
from core.representation import json_accepted, view_page_values
from core.throttling import UserScopedThrottle

from . import services
from .cache import payment_scope, payments_scope
from .filters import PaymentFilter
from .models import Payment, PaymentStatus
from .serializers import (
    IDEMPOTENCY_KEY_HEADER,
    PAYMENT_VALUE_COLUMNS,
    BalanceSerializer,
    PaymentCreateSerializer,
    PaymentSerializer,
    idempotency_key_from,
    payment_repr,
    payment_value_rows,
)


def _payment_page(view, request, queryset) -> Response:
    if json_accepted(request):
        # JSON: the serializer's bytes from plain row values, without model instances
        # or its per-field machinery (core/representation.py).
        page = view.paginate_queryset(view_page_values(view, queryset, *PAYMENT_VALUE_COLUMNS))
        return view.get_paginated_response(payment_value_rows(page))
    return view.get_paginated_response(PaymentSerializer(view.paginate_queryset(queryset), many=True).data)

STATUS_PARAM = OpenApiParameter("status", str, enum=PaymentStatus.values, description="Only payments in this status.")
IDEMPOTENCY_PARAM = OpenApiParameter(
    IDEMPOTENCY_KEY_HEADER,
    str,
    location=OpenApiParameter.HEADER,
    required=True,
    description="1-255 printable ASCII characters. The same key with the same body returns the first payment.",
)


class ClientMayCreate(permissions.BasePermission):
    """Only clients create payments (they pay their workers)."""

    message = "Only clients can create payments."

    def has_permission(self, request, view):
        return getattr(view, "action", None) != "create" or request.user.is_client


class WritesThrottled:
    """Throttle only POSTs (per user, scope from ``throttle_scope``): reads are cheap and cached."""

    def get_throttles(self):
        return [UserScopedThrottle()] if self.request.method == "POST" else []


# --- what each cached GET depends on --------------------------------------------
# Coarse scopes (part of the key): ``payments:user:<id>`` and ``payment:<id>``
# (payments.cache). Every payment response is private: the response cache keys it
# by caller and adds ``user:<caller>`` itself.


def my_payments_scopes(view, request, **kwargs):
    return [payments_scope(request.user.pk)]


def payment_detail_scopes(view, request, pk=None, **kwargs):
    return [payment_scope(pk)]


def user_payments_scopes(view, request, pk=None, **kwargs):
    # Staff may read another user's list: it depends on that user's payments (an
    # id without a user yet is an empty list; the bulk writer, seed, bumps
    # ``payments:user:<id>`` of every user it creates).
    return [payments_scope(pk)]


def balance_scopes(view, request, **kwargs):
    # Totals only: no names, no job titles.
    return [payments_scope(request.user.pk)]


# Row scopes: every payment representation embeds the job (id, title, status) and
# both users (names, rating), so a job moving to ``completed`` or a new rating
# shows at once while other users' writes leave the entry valid.
PAYMENT_COLUMNS = (("job", "job_id"), ("user", "payer_id"), ("user", "recipient_id"))
PAYMENT_ROWS = Rows(*PAYMENT_COLUMNS)
# A user's payments (static: the URL's id alone): a payment's job and users are
# fixed once written, the list's rows and order change only with payments:user:<id>,
# so the ids query is recalled (Rows.remembered).
USER_PAYMENT_ROWS = Rows(*PAYMENT_COLUMNS, recall=True)


class PaymentViewSet(ListOnlyFilterMixin, WritesThrottled, viewsets.GenericViewSet):
    """Payments, for signed-in users: the caller's payments (as payer or
    recipient), one payment, create (clients), confirm (payer) and refund (payer or
    staff). A payment the caller may not see does not exist for them (404)."""

    serializer_class = PaymentSerializer
    permission_classes = [permissions.IsAuthenticated, ClientMayCreate]
    throttle_scope = "payments"
    filterset_class = PaymentFilter
    # Only for schema generation (path parameter types); rows come from get_queryset.
    queryset = Payment.objects.none()
    # The input serializer of ``create``; a test swaps it to prove the database's own checks.
    create_serializer_class = PaymentCreateSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Payment.objects.none()
        if self.action == "list":
            return Payment.objects.involving(self.request.user).for_list()
        return Payment.objects.visible_to(self.request.user).for_detail()

    @extend_schema(parameters=[STATUS_PARAM], responses=PaymentSerializer(many=True))
    @cached_response(my_payments_scopes, rows=PAYMENT_ROWS, private=True)
    def list(self, request):
        """The caller's payments, as payer or recipient, newest first."""
        # Budget (MISS): 4 queries (token, ids, COUNT, page) whatever the size.
        return _payment_page(self, request, self.filter_queryset(self.get_queryset()))

    @extend_schema(
        parameters=[IDEMPOTENCY_PARAM],
        request=PaymentCreateSerializer,
        responses={
            201: PaymentSerializer,
            200: PaymentSerializer,
            400: OpenApiResponse(
                description="Invalid input (see `details`), or a payment the rules never allow: `job` is not "
                "one of the caller's jobs, `recipient` is not a worker accepted on it, `currency` is not the "
                "job's, or `amount` is more than the job's rate x its scheduled hours."
            ),
            409: OpenApiResponse(
                description="Conflict: the job is not completed; the worker already has a pending or "
                "succeeded payment for this job (`details.payment` names it); or the Idempotency-Key "
                "was already used with another body."
            ),
        },
    )
    def create(self, request):
        """Clients pay a worker accepted on their own, completed job, in the job's
        currency, at most the job's rate x its scheduled hours (no tips, no extra
        hours). One pending or succeeded payment per job and worker: another one is
        a ``409`` naming it (after it fails or is refunded a new one may follow).
        ``201`` a new pending payment; ``200`` the same payment again for a
        repeated ``Idempotency-Key`` and body; ``409`` for a repeated key with
        another body."""
        idempotency_key = idempotency_key_from(request)
        serializer = self.create_serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        payment, created = services.payment_create(
            payer=request.user, idempotency_key=idempotency_key, **serializer.validated_data
        )
        return Response(
            PaymentSerializer(payment).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(responses=PaymentSerializer)
    # The payment's job and users (they never change). Read in what the caller may
    # see: the build answers 404 and stores nothing if the caller may not see it.
    @cached_response(payment_detail_scopes, rows=Rows(*PAYMENT_COLUMNS, detail=True), private=True)
    def retrieve(self, request, pk=None):
        """Payer, recipient or staff; anyone else 404."""
        # Budget (MISS): 3 queries (token, ids, row).
        payment = self.get_object()
        return Response(payment_repr(payment) if json_accepted(request) else PaymentSerializer(payment).data)

    @extend_schema(
        request=None,
        responses={
            200: PaymentSerializer,
            409: OpenApiResponse(description="Conflict: the payment is not pending."),
            503: OpenApiResponse(description="The payment gateway is unavailable; the payment is still pending."),
        },
    )
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        """``pending`` -> ``succeeded`` through the payment gateway (``failed``, with a
        message, when it declines the charge); the payer only."""
        payment = services.payment_confirm(payment_id=pk, by=request.user)
        response = Response(PaymentSerializer(payment).data)
        if payment.status == PaymentStatus.FAILED:
            response.envelope_message = "The payment gateway declined the charge."
        return response

    @extend_schema(
        request=None,
        responses={
            200: PaymentSerializer,
            409: OpenApiResponse(description="Conflict: the payment has not succeeded, or the gateway refused."),
            503: OpenApiResponse(description="The payment gateway is unavailable; the payment is unchanged."),
        },
    )
    @action(detail=True, methods=["post"])
    def refund(self, request, pk=None):
        """``succeeded`` -> ``refunded``; the payer or staff."""
        payment = services.payment_refund(payment_id=pk, by=request.user)
        return Response(PaymentSerializer(payment).data)


class SelfOrStaff(permissions.BasePermission):
    """The user named in the path, or staff; anyone else gets a 404 (ids can't be probed)."""

    def has_permission(self, request, view):
        user = request.user
        if user.is_staff or str(user.pk) == str(view.kwargs.get("pk")):
            return True
        raise NotFound()


class UserPaymentListView(GenericAPIView):
    """A user's payments as payer or recipient, newest first: for that user and
    staff only (404 for anyone else). For staff, an id without payments (or without
    a user) is an empty list."""

    # Budget (MISS): 4 queries (token, ids, COUNT, page).

    serializer_class = PaymentSerializer
    permission_classes = [permissions.IsAuthenticated, SelfOrStaff]
    filterset_class = PaymentFilter
    queryset = Payment.objects.none()  # schema generation only
    # get_queryset() depends on the URL's id alone (who may ask is the permission's
    # business): its reads are compiled once when no filter is given
    # (core/representation.py, static_queryset).
    static_queryset_for = ("get",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Payment.objects.none()
        return Payment.objects.involving(self.kwargs["pk"]).for_list()

    @extend_schema(parameters=[STATUS_PARAM], responses=PaymentSerializer(many=True))
    @cached_response(user_payments_scopes, rows=USER_PAYMENT_ROWS, private=True)
    def get(self, request, pk):
        return _payment_page(self, request, self.filter_queryset(self.get_queryset()))


class BalanceView(GenericAPIView):
    """The caller's totals: ``paid_total`` (succeeded, caller paid),
    ``received_total`` (succeeded, caller received) and ``pending_total`` (pending,
    either direction), as 2-decimal strings.

    Amounts in different currencies are never added up: the top-level totals are
    for ``currency``, the platform's main currency; ``by_currency`` lists the same
    totals for every currency the caller has payments in."""

    # The main currency is settings.CURRENCIES[0]. Both come from ONE grouped
    # aggregate query (plus the token lookup): budget 2 queries.

    serializer_class = BalanceSerializer
    permission_classes = [permissions.IsAuthenticated]
    pagination_class = None

    @extend_schema(responses=BalanceSerializer)
    @cached_response(balance_scopes, private=True)
    def get(self, request):
        zero = Decimal("0")
        by_currency = [
            {
                "currency": row["currency"],
                "paid_total": row["paid_total"] or zero,
                "received_total": row["received_total"] or zero,
                "pending_total": row["pending_total"] or zero,
            }
            for row in Payment.objects.balance_by_currency(request.user)
        ]
        primary = settings.CURRENCIES[0]
        main = next(
            (row for row in by_currency if row["currency"] == primary),
            {"currency": primary, "paid_total": zero, "received_total": zero, "pending_total": zero},
        )
        return Response(BalanceSerializer({**main, "by_currency": by_currency}).data)
