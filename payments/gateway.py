"""The payment-gateway seam (P3): one interface, a sandbox as the embedded default, a processor behind it.

Full card numbers and security codes pass through ``charge`` and nowhere else: they are never stored,
logged or echoed back; a result carries only the last four digits.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

DEFAULT_GATEWAY = "payments.gateway.SandboxGateway"


@dataclass(frozen=True)
class ChargeResult:
    approved: bool
    reference: str
    last4: str
    message: str


class Gateway(Protocol):
    name: str

    def charge(
        self, *, amount: Decimal, card_number: str, exp_month: int, exp_year: int, cvc: str, reference: str
    ) -> ChargeResult:
        """Charge ``amount`` to the card; a decline is a result, not an exception.

        ``reference`` is ours (it names the bill, never the patient); the result's reference is the
        processor's. Raise only when the processor could not be reached or answered nonsense.
        """
        ...


def card_digits(card_number: str) -> str:
    return "".join(ch for ch in card_number if ch not in " -")


def luhn_valid(digits: str) -> bool:
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


class SandboxGateway:
    """Test cards as Stripe's: 4242 4242 4242 4242 approves, 4000 0000 0000 0002 declines.

    Any other Luhn-valid number approves; a Luhn-invalid number, a bad security code or an expired
    card declines. Nothing leaves the process.
    """

    name = "sandbox"
    DECLINING_CARDS: dict[str, str] = {
        "4000000000000002": "Your card was declined.",
        "4000000000009995": "Your card has insufficient funds.",
    }

    def __init__(self, *, now: datetime | None = None) -> None:
        self._now = now

    def charge(
        self, *, amount: Decimal, card_number: str, exp_month: int, exp_year: int, cvc: str, reference: str
    ) -> ChargeResult:
        digits = card_digits(card_number)
        last4 = digits[-4:] if digits.isdigit() else ""
        result_reference = f"sbx_{secrets.token_hex(12)}"
        message = self._decline_reason(digits=digits, exp_month=exp_month, exp_year=exp_year, cvc=cvc)
        if message is None and amount <= 0:
            message = "The amount must be greater than zero."
        approved = message is None
        logger.info(
            "sandbox charge %s for %s: %s (card ending %s)",
            result_reference, reference, "approved" if approved else "declined", last4 or "-",
        )  # fmt: skip
        return ChargeResult(
            approved=approved, reference=result_reference, last4=last4, message=message or "Approved."
        )

    def _decline_reason(self, *, digits: str, exp_month: int, exp_year: int, cvc: str) -> str | None:
        if not luhn_valid(digits):
            return "The card number is invalid."
        if not 1 <= exp_month <= 12:
            return "The expiry date is invalid."
        today = (self._now or datetime.now(UTC)).date()
        if (exp_year, exp_month) < (today.year, today.month):
            return "The card has expired."
        if not (cvc.isdigit() and len(cvc) in (3, 4)):
            return "The security code is invalid."
        return self.DECLINING_CARDS.get(digits)


def get_gateway() -> Gateway:
    """The configured gateway (setting ``PAYMENT_GATEWAY``, a dotted path; the sandbox by default)."""
    gateway_class = import_string(getattr(settings, "PAYMENT_GATEWAY", DEFAULT_GATEWAY))
    return gateway_class()
