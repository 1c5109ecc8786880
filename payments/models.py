"""Payments from a client to an accepted worker of the client's job."""
from django.conf import settings
from django.db import models
from django.db.models import F, Q, Sum

from core.models import TimeStampedModel

# The largest id a BigAutoField holds: a path id above it matches no row (rather
# than overflowing the database driver).


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"


# A payment that holds or has moved money: at most one per job and worker.
LIVE_STATUSES = (PaymentStatus.PENDING, PaymentStatus.SUCCEEDED)


class PaymentQuerySet(models.QuerySet):
    def for_list(self):
        """Payment rows with job, payer and recipient: 1 query (+1 COUNT when paginated)."""
        return self.select_related("job", "payer", "recipient")

    def for_detail(self):
        """Same shape as a list row: 1 query."""
        return self.for_list()

    def visible_to(self, user):
        """Payments where ``user`` is payer or recipient; all of them for staff."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self
        return self.involving(user)

    def involving(self, user):
        """Payments where ``user`` (a user or an id) is payer or recipient."""
        return self.filter(Q(payer=user) | Q(recipient=user))

    def live_for(self, *, job_id: int, recipient_id: int):
        """The pending or succeeded payment to ``recipient_id`` for ``job_id`` (at most
        one: ``payment_one_live_per_job_worker``)."""
        return self.filter(job_id=job_id, recipient_id=recipient_id, status__in=LIVE_STATUSES)

    def locked(self):
        """FOR UPDATE on the payment rows only (not on the joined job and users)."""
        return self.select_for_update(of=("self",))

    def by_idempotency_key(self, *, payer, key: str):
        """The payment ``payer`` created with ``key`` (the unique pair), with its detail shape."""
        return self.for_detail().filter(payer=payer, idempotency_key=key)

    def balance_by_currency(self, user):
        """One grouped aggregate per currency: succeeded paid/received by ``user`` and
        pending in either direction (1 query; a sum over no row is None)."""
        return (
            self.involving(user)
            .order_by("currency")
            .values("currency")
            .annotate(
                paid_total=Sum("amount", filter=Q(status=PaymentStatus.SUCCEEDED, payer=user)),
                received_total=Sum("amount", filter=Q(status=PaymentStatus.SUCCEEDED, recipient=user)),
                pending_total=Sum("amount", filter=Q(status=PaymentStatus.PENDING)),
            )
        )


class Payment(TimeStampedModel):
    # No single-column FK indexes: payment_payer_newest and payment_recipient_newest
    # lead with these columns.
    payer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments_made", db_index=False
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments_received", db_index=False
    )
    job = models.ForeignKey("jobs.Job", on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    reference = models.CharField(max_length=64, unique=True)
    idempotency_key = models.CharField(max_length=255)
    # A hash of the request body the key was first used with: same key, other body -> 409.
    request_fingerprint = models.CharField(max_length=64)
    gateway_reference = models.CharField(max_length=128, blank=True)

    objects = models.Manager.from_queryset(PaymentQuerySet)()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["payer", "-created_at"], name="payment_payer_newest"),
            models.Index(fields=["recipient", "-created_at"], name="payment_recipient_newest"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(condition=~Q(payer=F("recipient")), name="payment_not_to_self"),
            models.CheckConstraint(condition=Q(status__in=PaymentStatus.values), name="payment_status_valid"),
            models.UniqueConstraint(fields=["payer", "idempotency_key"], name="payment_idempotency_per_payer"),
            # One live (pending or succeeded) payment per job and worker, whatever the
            # idempotency key: concurrent inserts under different keys let one win.
            # A failed or refunded payment may be followed by a new one.
            models.UniqueConstraint(
                fields=["job", "recipient"],
                condition=Q(status__in=LIVE_STATUSES),
                name="payment_one_live_per_job_worker",
            ),
        ]

    def __str__(self):
        return self.reference
