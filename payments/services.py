"""Payment writes with rules: create (idempotent per payer and Idempotency-Key),
confirm (pending -> succeeded|failed through the gateway) and refund
(succeeded -> refunded). Confirm and refund lock the payment row, so two of them
at once run one after the other and the second sees the first one's state.

Payments follow the work. A payment is for a ``completed`` job of the payer's, to
a worker accepted on it, in the job's currency, of at most what the shift is
worth to that worker (``Job.worth_per_worker``: rate x scheduled hours; no tips
and no extra hours: a bonus is a separate job). At most one payment per job and
worker is pending or succeeded (``payment_one_live_per_job_worker``); a failed or
refunded one may be followed by a new one. Refusals are domain errors
(``core.rules``): 400 for a request that can never succeed, 409 for one the
current state refuses."""
from __future__ import annotations

import hashlib
import json
import secrets
from decimal import Decimal

from django.db import IntegrityError, transaction

from core.envelope import is_unique_violation
from core.rules import Invalid, Missing, NotAllowed, StateConflict, Unavailable
from jobs.models import Application, ApplicationStatus, Job, JobStatus

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
        raise StateConflict("This Idempotency-Key was already used with a different request body.")
    return existing


def _integrity_error(exc: IntegrityError) -> Exception:
    """The domain error for a constraint the database refused (the checks above
    normally catch these first; the database is the last word)."""
    text = str(exc)
    if "payment_amount_positive" in text:
        return Invalid("Must be greater than 0.", field="amount")
    if "payment_not_to_self" in text:
        return Invalid("You cannot pay yourself.", field="recipient")
    if is_unique_violation(exc):
        return StateConflict("The payment clashes with an existing one.")
    return Invalid("The payment breaks a rule of the database.")


def _already_paid(live: Payment) -> StateConflict:
    """409 naming the live payment a new one would double."""
    return StateConflict(
        f"This worker already has a {live.status} payment for this job ({live.reference}); "
        "another one is possible only after it fails or is refunded.",
        details={
            "payment": {"id": live.pk, "reference": live.reference, "status": live.status, "amount": f"{live.amount:.2f}"}
        },
    )


def _live_payment(*, job_id: int, recipient_id: int) -> Payment | None:
    """The pending or succeeded payment of this job to this worker, if there is one."""
    return Payment.objects.live_for(job_id=job_id, recipient_id=recipient_id).first()


def _payable_application(*, payer, job: int, recipient: int) -> Application:
    """The accepted application of ``recipient`` on ``payer``'s completed ``job``,
    with the job and the worker loaded (1 query when the rules hold)."""
    application = (
        Application.objects.select_related("job", "worker")
        .filter(job_id=job, job__client=payer, worker_id=recipient)
        .first()
    )
    job_row = application.job if application is not None else Job.objects.owned_by(payer).filter(pk=job).first()
    if job_row is None:
        raise Invalid("No job of yours has this id.", field="job")
    if job_row.status != JobStatus.COMPLETED:
        raise StateConflict(f"A job is paid once it is completed; this one is {job_row.status}.")
    if application is None or application.status != ApplicationStatus.ACCEPTED:
        raise Invalid("The recipient must be an accepted worker of this job.", field="recipient")
    return application


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
    worker of the completed job. Returns ``(payment, created)``: the same key with
    the same request returns the first payment (``created`` False, no second row),
    with another request it is a 409. Safe under concurrency: the unique
    constraints on (payer, idempotency_key) and on the live payment of (job,
    recipient) let one insert win; the others, whose insert waited for the winner's
    commit, read the winner's row (the same key: replay; another key: 409 naming it)."""
    fingerprint = payment_request_fingerprint(job_id=job, recipient_id=recipient, amount=amount, currency=currency)
    with transaction.atomic():
        existing = _replay(payer=payer, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if existing is not None:
            return existing, False

        application = _payable_application(payer=payer, job=job, recipient=recipient)
        job_row = application.job
        if currency != job_row.currency:
            raise Invalid(f"Must be the job's currency ({job_row.currency}).", field="currency")
        ceiling = job_row.worth_per_worker
        if amount > ceiling:
            raise Invalid(
                f"At most {ceiling} {job_row.currency}: the job's rate ({job_row.rate}/h) "
                f"x its scheduled hours ({job_row.scheduled_hours.normalize():f}).",
                field="amount",
            )
        live = _live_payment(job_id=job_row.pk, recipient_id=recipient)
        if live is not None:
            # A concurrent request with this very key may have committed it since the
            # first lookup: that is a replay, not a second payment.
            existing = _replay(payer=payer, idempotency_key=idempotency_key, fingerprint=fingerprint)
            if existing is not None:
                return existing, False
            raise _already_paid(live)

        payment = Payment(
            payer=payer,
            recipient=application.worker,
            job=job_row,
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
            # A concurrent request won the insert (ours waited for its commit, so its
            # row is visible now): the same key -> its payment; another key for the
            # same job and worker -> 409 naming it.
            existing = _replay(payer=payer, idempotency_key=idempotency_key, fingerprint=fingerprint)
            if existing is not None:
                return existing, False
            live = _live_payment(job_id=job_row.pk, recipient_id=recipient)
            if live is not None:
                raise _already_paid(live) from exc
            raise _integrity_error(exc) from exc
    return payment, True


def _lock_visible(*, payment_id: int, by) -> Payment:
    """The payment row, locked until the transaction ends; 404 when ``by`` may not see it."""
    try:
        return Payment.objects.visible_to(by).for_detail().locked().get(pk=payment_id)
    except Payment.DoesNotExist:
        raise Missing("No payment with this id.") from None


def payment_confirm(*, payment_id: int, by) -> Payment:
    """``pending -> succeeded`` (or ``failed`` when the gateway declines), payer only.
    The row stays locked during the gateway call: a second confirm waits and then
    gets a 409 instead of charging twice. The gateway gets the payment's reference
    as its idempotency key, so a retry after a lost answer cannot charge twice."""
    gateway = get_gateway()
    with transaction.atomic():
        payment = _lock_visible(payment_id=payment_id, by=by)
        if payment.payer_id != by.pk:
            raise NotAllowed("Only the payer can confirm a payment.")
        if payment.status != PaymentStatus.PENDING:
            raise StateConflict(f"Only a pending payment can be confirmed; this one is {payment.status}.")
        try:
            result = gateway.charge(reference=payment.reference, amount=payment.amount, currency=payment.currency)
        except GatewayError:
            raise Unavailable("The payment gateway is unavailable; the payment is still pending.") from None
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
            raise NotAllowed("Only the payer or staff can refund a payment.")
        if payment.status != PaymentStatus.SUCCEEDED:
            raise StateConflict(f"Only a succeeded payment can be refunded; this one is {payment.status}.")
        try:
            result = gateway.refund(reference=payment.reference, amount=payment.amount, currency=payment.currency)
        except GatewayError:
            raise Unavailable("The payment gateway is unavailable; the payment is unchanged.") from None
        if not result.ok:
            raise StateConflict(result.message or "The payment gateway refused the refund.")
        payment.status = PaymentStatus.REFUNDED
        payment.save(update_fields=["status", "updated_at"])
    return payment
