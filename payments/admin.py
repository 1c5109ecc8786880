"""Admin for payments. Job, payer and recipient use autocomplete; the list joins
them. Once a payment exists its idempotency data and gateway reference are
evidence of what happened: read-only."""
from django.contrib import admin

from .models import Payment


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    # Newest first by the primary key's index: -created_at is indexed only per payer/recipient.
    ordering = ("-id",)
    list_display = ("reference", "job", "payer", "recipient", "amount", "currency", "status", "created_at")
    list_select_related = ("job", "payer", "recipient")
    list_filter = ("status", "currency")
    search_fields = ("reference", "gateway_reference", "payer__email", "recipient__email", "job__title")
    autocomplete_fields = ("job", "payer", "recipient")
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        fixed = ("created_at", "updated_at")
        if obj is None:
            return fixed
        return (*fixed, "reference", "idempotency_key", "request_fingerprint", "gateway_reference")
