"""Payment URLs (docs/API.md): /payments/..., /users/me/balance/, /users/{id}/payments/."""
from django.urls import path

from .views import BalanceView, PaymentViewSet, UserPaymentListView

payment_list = PaymentViewSet.as_view({"get": "list", "post": "create"})
payment_detail = PaymentViewSet.as_view({"get": "retrieve"})
payment_confirm = PaymentViewSet.as_view({"post": "confirm"})
payment_refund = PaymentViewSet.as_view({"post": "refund"})

urlpatterns = [
    path("payments/", payment_list, name="payment-list"),
    path("payments/<id:pk>/", payment_detail, name="payment-detail"),
    path("payments/<id:pk>/confirm/", payment_confirm, name="payment-confirm"),
    path("payments/<id:pk>/refund/", payment_refund, name="payment-refund"),
    path("users/me/balance/", BalanceView.as_view(), name="me-balance"),
    path("users/<id:pk>/payments/", UserPaymentListView.as_view(), name="user-payments"),
]
