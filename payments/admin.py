"""Admin for payments. Job, payer and recipient use autocomplete; the list joins
them.

Money moves only by the rules of ``payments.services``: the admin cannot add a
payment (the API makes them, under its rules), nor delete one, and every field of
a payment, the money fields (amount, currency, status) first, is read-only. A
refund is an admin action that runs ``payment_refund``, the API's service, under
the same row lock and through the same gateway; a refusal (not succeeded, the
gateway refused or is down) is an error message, never a 500."""
from django.contrib import admin

from core.admin_services import run_service_action

from . import services
from .models import Payment


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    # Newest first by the primary key's index: -created_at is indexed only per payer/recipient.
    ordering = ("-id",)
    list_display = ("reference", "job", "payer", "recipient", "amount", "currency", "status", "created_at")
    list_select_related = ("job", "payer", "recipient")
    list_filter = ("status", "currency")
    search_fields = ("reference", "gateway_reference", "payer__email", "recipient__email", "job__title")
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ("refund_payments",)
    fields = (
        "reference", "job", "payer", "recipient", "amount", "currency", "status",
        "gateway_reference", "idempotency_key", "request_fingerprint", "created_at", "updated_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Refund the selected payments (through the gateway)")
    def refund_payments(self, request, queryset):
        run_service_action(
            self, request, queryset,
            lambda payment, user: services.payment_refund(payment_id=payment.pk, by=user), "payment(s) refunded",
        )
