"""The payment gateway interface, and the local fake used by default.

``settings.PAYMENT_GATEWAY`` is the dotted path of a ``PaymentGateway`` subclass;
``get_gateway()`` builds it (read at call time, never at import). The services
call ``charge`` on confirm and ``refund`` on refund, with the payment row locked,
and pass ``payment.reference`` as the gateway's idempotency key so that a retried
call after a timeout can never charge twice.
"""
from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils.module_loading import import_string


class GatewayError(Exception):
    """The gateway could not be reached or answered garbage: nothing happened, retry later."""


@dataclass(frozen=True)
class GatewayResult:
    """What the gateway said: ``ok`` False is a definite decline (not an outage)."""

    ok: bool
    reference: str = ""
    message: str = ""


class PaymentGateway(ABC):
    """A payment provider. Implementations raise ``GatewayError`` when the outcome
    is unknown and return ``GatewayResult(ok=False)`` when the provider declined."""

    @abstractmethod
    def charge(self, *, reference: str, amount: Decimal, currency: str) -> GatewayResult:
        """Take ``amount`` from the payer for the payment ``reference``."""

    @abstractmethod
    def refund(self, *, reference: str, amount: Decimal, currency: str) -> GatewayResult:
        """Give back ``amount`` of the payment ``reference``."""


class FakeGateway(PaymentGateway):
    """No network: every charge and refund succeeds with a made-up reference.
    Used in development, tests and benchmarks."""

    def charge(self, *, reference: str, amount: Decimal, currency: str) -> GatewayResult:
        return GatewayResult(ok=True, reference=f"fake_ch_{secrets.token_hex(8)}")

    def refund(self, *, reference: str, amount: Decimal, currency: str) -> GatewayResult:
        return GatewayResult(ok=True, reference=f"fake_re_{secrets.token_hex(8)}")


def get_gateway() -> PaymentGateway:
    """The configured gateway (``settings.PAYMENT_GATEWAY``)."""
    gateway = import_string(settings.PAYMENT_GATEWAY)()
    if not isinstance(gateway, PaymentGateway):
        raise TypeError(f"{settings.PAYMENT_GATEWAY} is not a payments.gateway.PaymentGateway")
    return gateway
