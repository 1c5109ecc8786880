"""Payment writes with rules: create (idempotent per payer and Idempotency-Key),
confirm (pending -> succeeded|failed through the gateway) and refund
(succeeded -> refunded). Confirm and refund lock the payment row, so two of them
at once run one after the other and the second sees the first one's state."""
from __future__ import annotations

import hashlib
import json
import secrets
from decimal import Decimal

from django.db import IntegrityError, transaction
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError

from core.envelope import Conflict, ServiceUnavailable, is_unique_violation
from jobs.models import Application, ApplicationStatus, Job

from .gateway import GatewayError, get_gateway
from .models import Payment, PaymentStatus


def payment_reference_new() -> str:
    """A public, unguessable payment reference (64 random bits)."""
    return "PAY-" + secrets.token_hex(8).upper()


def payment_request_fingerprint(*, job_id: int, recipient_id: int, amount: Decimal, currency: str) -> str:
    """A stable hash of what a create request asks for (not of its bytes: key order,
    spacing and ignored fields do not make it another request)."""
    canonical = json.dumps(
        {"job": job_id, "recipient": recipient_id, "amount": f"{amount:.2f}", "currency": currency},
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(*, payer, idempotency_key: str, fingerprint: str) -> Payment | None:
    """The payment already made with this key, or None; 409 when the key was used
    for another request."""
    existing = Payment.objects.by_idempotency_key(payer=payer, key=idempotency_key).first()
    if existing is not None and existing.request_fingerprint != fingerprint:
        raise Conflict("This Idempotency-Key was already used with a different request body.")
    return existing


def _integrity_error(exc: IntegrityError) -> Exception:
    """The API error for a constraint the database refused (the serializer normally
    catches these first; the database is the last word)."""
    text = str(exc)
    if "payment_amount_positive" in text:
        return ValidationError({"amount": ["Must be greater than 0."]})
    if "payment_not_to_self" in text:
        return ValidationError({"recipient": ["You cannot pay yourself."]})
    if is_unique_violation(exc):
        return Conflict("The payment clashes with an existing one.")
    return ValidationError({"non_field_errors": ["The payment breaks a rule of the database."]})


def payment_create(
    *,
    payer,
    job: int,
    recipient: int,
    amount: Decimal,
    currency: str,
    idempotency_key: str,
) -> tuple[Payment, bool]:
    """Create a pending payment from ``payer`` (the job's client) to an accepted
    worker of the job. Returns ``(payment, created)``: the same key with the same
    request returns the first payment (``created`` False, no second row), with
    another request it is a 409. Safe under concurrency: the unique constraint on
    (payer, idempotency_key) lets one insert win; the others, whose insert waited
    for the winner's commit, read the winner's row."""
    fingerprint = payment_request_fingerprint(job_id=job, recipient_id=recipient, amount=amount, currency=currency)
    with transaction.atomic():
        existing = _replay(payer=payer, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if existing is not None:
            return existing, False

        # One query checks the whole rule (the caller's job, that worker, accepted)
        # and loads the job and the worker for the response.
        application = (
            Application.objects.select_related("job", "worker")
            .filter(job_id=job, job__client=payer, worker_id=recipient, status=ApplicationStatus.ACCEPTED)
            .first()
        )
        if application is None:
            if not Job.objects.owned_by(payer).filter(pk=job).exists():
                raise ValidationError({"job": ["No job of yours has this id."]})
            raise ValidationError({"recipient": ["The recipient must be an accepted worker of this job."]})
        if currency != application.job.currency:
            raise ValidationError({"currency": [f"Must be the job's currency ({application.job.currency})."]})

        payment = Payment(
            payer=payer,
            recipient=application.worker,
            job=application.job,
            amount=amount,
            currency=currency,
            status=PaymentStatus.PENDING,
            reference=payment_reference_new(),
            idempotency_key=idempotency_key,
            request_fingerprint=fingerprint,
        )
        try:
            with transaction.atomic():  # a savepoint: the outer transaction survives a refused insert
                payment.save(force_insert=True)
        except IntegrityError as exc:
            # A concurrent request with the same key won the insert (ours waited for its
            # commit, so its row is visible now): answer with its payment.
            existing = _replay(payer=payer, idempotency_key=idempotency_key, fingerprint=fingerprint)
            if existing is not None:
                return existing, False
            raise _integrity_error(exc) from exc
    return payment, True


def _lock_visible(*, payment_id: int, by) -> Payment:
    """The payment row, locked until the transaction ends; 404 when ``by`` may not see it."""
    try:
        return Payment.objects.visible_to(by).for_detail().locked().get(pk=payment_id)
    except Payment.DoesNotExist:
        raise NotFound("No payment with this id.") from None


def payment_confirm(*, payment_id: int, by) -> Payment:
    """``pending -> succeeded`` (or ``failed`` when the gateway declines), payer only.
    The row stays locked during the gateway call: a second confirm waits and then
    gets a 409 instead of charging twice. The gateway gets the payment's reference
    as its idempotency key, so a retry after a lost answer cannot charge twice."""
    gateway = get_gateway()
    with transaction.atomic():
        payment = _lock_visible(payment_id=payment_id, by=by)
        if payment.payer_id != by.pk:
            raise PermissionDenied("Only the payer can confirm a payment.")
        if payment.status != PaymentStatus.PENDING:
            raise Conflict(f"Only a pending payment can be confirmed; this one is {payment.status}.")
        try:
            result = gateway.charge(reference=payment.reference, amount=payment.amount, currency=payment.currency)
        except GatewayError:
            raise ServiceUnavailable("The payment gateway is unavailable; the payment is still pending.") from None
        payment.status = PaymentStatus.SUCCEEDED if result.ok else PaymentStatus.FAILED
        payment.gateway_reference = result.reference[:128]
        payment.save(update_fields=["status", "gateway_reference", "updated_at"])
    return payment


def payment_refund(*, payment_id: int, by) -> Payment:
    """``succeeded -> refunded``, by the payer or staff, under the payment's row lock."""
    gateway = get_gateway()
    with transaction.atomic():
        payment = _lock_visible(payment_id=payment_id, by=by)
        if payment.payer_id != by.pk and not by.is_staff:
            raise PermissionDenied("Only the payer or staff can refund a payment.")
        if payment.status != PaymentStatus.SUCCEEDED:
            raise Conflict(f"Only a succeeded payment can be refunded; this one is {payment.status}.")
        try:
            result = gateway.refund(reference=payment.reference, amount=payment.amount, currency=payment.currency)
        except GatewayError:
            raise ServiceUnavailable("The payment gateway is unavailable; the payment is unchanged.") from None
        if not result.ok:
            raise Conflict(result.message or "The payment gateway refused the refund.")
        payment.status = PaymentStatus.REFUNDED
        payment.save(update_fields=["status", "updated_at"])
    return payment
