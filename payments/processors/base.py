"""The processor seam (H1-H5): what the product asks of a card processor, whichever it is.

Five operations, and nothing else touches a card:

- ``checkout_start``: a hosted checkout for an amount, answered with the URL to send the patient to;
- ``event_verify``: a confirmation the processor signed, verified and parsed (the product records a payment from
  nothing else, H2; ``payments.confirmations`` applies it);
- ``refund``: money back on a payment, whole or part (H3);
- ``card_save_start`` / ``saved_card``: a hosted page where the patient saves a card for a plan, and the saved
  card it left (H5; the card stays with the processor, we keep its ids);
- ``charge_saved_card``: charge a saved card off-session (an installment, H5).

Every processor speaks in Stripe's event vocabulary (``checkout.session.completed``, ``payment_intent.succeeded``
…): Stripe is the first, and the sandbox signs events of the same shape, so one code path records both.
Money crosses the seam in cents, as integers; ``to_cents``/``from_cents`` are the only conversions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

CENTS = Decimal("0.01")


def to_cents(amount: Decimal) -> int:
    """Dollars to cents, exactly; ValueError for anything that is not a whole number of cents."""
    cents = Decimal(amount) * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of cents")
    return int(cents)


def from_cents(cents: int) -> Decimal:
    return (Decimal(int(cents)) / 100).quantize(CENTS)


class ProcessorError(Exception):
    """The processor could not do what was asked. ``unavailable``: it could not be reached or failed on its
    side (try again later, nothing is lost); otherwise it refused the request (the message says why)."""

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


class SignatureInvalid(Exception):
    """An event without a valid signature of this processor (forged, unsigned, tampered with or stale)."""


@dataclass(frozen=True)
class CheckoutRequest:
    """What a hosted checkout is for. ``reference`` is ours (``Checkout.reference``): the processor hands it back
    in its events (Stripe: ``client_reference_id`` and the PaymentIntent's metadata). ``description`` names
    the practice, never the patient or the care (T4, H4)."""

    reference: str
    amount_cents: int
    description: str
    success_url: str
    cancel_url: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    expires_at: datetime | None = None


@dataclass(frozen=True)
class CardSaveRequest:
    """A hosted page that saves a card for later off-session charges (a plan, pay-later: H5)."""

    reference: str
    description: str
    success_url: str
    cancel_url: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HostedPage:
    """Where to send the patient (``url``) and the processor's id of that session."""

    session_id: str
    url: str


@dataclass(frozen=True)
class ProcessorEvent:
    """A verified event: Stripe's ``id``, ``type`` and ``data.object`` (as plain JSON values)."""

    id: str
    type: str
    created: int
    object: dict[str, Any]


@dataclass(frozen=True)
class RefundResult:
    id: str
    amount_cents: int
    status: str  # Stripe's: succeeded, pending, failed, canceled, requires_action


@dataclass(frozen=True)
class SavedCard:
    """A card kept by the processor for off-session charges: its customer and payment method ids."""

    customer: str
    payment_method: str


@dataclass(frozen=True)
class OffSessionCharge:
    """The answer to ``charge_saved_card``. A decline is an answer (``succeeded`` False, the processor's
    message for the patient), not an exception; ``payment_reference`` is the PaymentIntent either way."""

    payment_reference: str
    succeeded: bool
    amount_cents: int
    message: str = ""


class Processor(Protocol):
    name: str
    # The origin of the hosted pages, when not this site: the payment page's Content-Security-Policy lets its
    # form's redirect go there (form-action).
    checkout_origin: str

    def checkout_start(self, *, request: CheckoutRequest) -> HostedPage:
        """A hosted checkout for ``request``. Raises ProcessorError."""
        ...

    def event_verify(self, *, payload: bytes, signature: str) -> ProcessorEvent:
        """The event in ``payload`` if ``signature`` is this processor's for it; raises SignatureInvalid."""
        ...

    def refund(
        self, *, payment_reference: str, amount_cents: int, idempotency_key: str, metadata: Mapping[str, str]
    ) -> RefundResult:
        """Refund ``amount_cents`` of the payment (a PaymentIntent id). Raises ProcessorError; the same
        ``idempotency_key`` never refunds twice."""
        ...

    def card_save_start(self, *, request: CardSaveRequest) -> HostedPage:
        """A hosted page where the patient saves a card (Stripe: Checkout in setup mode). Raises ProcessorError."""
        ...

    def saved_card(self, *, setup_reference: str) -> SavedCard:
        """The card a completed card-save session left (Stripe: the SetupIntent's customer and payment method)."""
        ...

    def charge_saved_card(
        self, *, card: SavedCard, amount_cents: int, idempotency_key: str, description: str,
        metadata: Mapping[str, str],
    ) -> OffSessionCharge:  # fmt: skip
        """Charge ``card`` without the patient present. Raises ProcessorError when the processor could not be
        asked; a declined card is an OffSessionCharge with ``succeeded`` False."""
        ...
