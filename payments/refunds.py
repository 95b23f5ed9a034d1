"""Refunds by staff (H3): whole or part of a payment, through the processor that took it, audited (T5).

The bill stays locked ``FOR NO KEY UPDATE`` across the processor's call, as a payment's does (docs/
architecture.md): two refunds of one payment at once cannot both pass the "what is left" check, and the
``charge.refunded`` event the processor sends for this refund waits for the lock, then finds it recorded.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from payments.confirmations import refund_status, return_record, returned_on
from payments.models import Payment, PaymentKind, PaymentStatus
from payments.processors import get_processor
from payments.processors.base import ProcessorError, to_cents
from practices.models import CENTS, Bill, Organization


class RefundRefused(ValueError):
    """Nothing was refunded: an unknown payment, an amount that is not a positive amount of cents or more than
    what is left, or the processor's refusal. The message says which, in one line."""


class RefundUnavailable(RuntimeError):
    """The processor could not be reached; nothing was recorded (the same request again never refunds twice)."""


def refundable_payment(*, organization: Organization, payment_id: Any) -> Payment:
    """The organization's succeeded payment ``payment_id``; RefundRefused for anything else (T1: another
    organization's payment is unknown here)."""
    try:
        pk = int(payment_id)
    except (TypeError, ValueError):
        raise RefundRefused(f"unknown payment {payment_id!r} in {organization.slug}") from None
    payment = (
        Payment.objects.select_related("organization", "bill")
        .filter(organization=organization, pk=pk, kind=PaymentKind.PAYMENT, status=PaymentStatus.SUCCEEDED)
        .first()
    )
    if payment is None:
        raise RefundRefused(f"unknown payment {payment_id!r} in {organization.slug}")
    return payment


def refund_left(*, payment: Payment) -> Decimal:
    """What can still be refunded of ``payment`` (its amount less refunds and disputes so far)."""
    return payment.amount - returned_on(payment)


def payment_refund(
    *, payment: Payment, amount: Decimal | str | None = None, user: Any = None, actor_label: str = ""
) -> Payment:
    """Refund ``amount`` of ``payment`` (all that is left when None) through its processor and record it: a
    negative payment, exported and posted as such, and the amount owed again on the campaign (H3), once the
    processor says it succeeded (a pending refund is recorded ``pending`` and waits for its event)."""
    with transaction.atomic():
        bill = Bill.objects.select_for_update(no_key=True).get(pk=payment.bill_id)
        left = refund_left(payment=payment)
        value = left if amount is None else _amount(amount)
        if left <= 0:
            raise RefundRefused(f"payment {payment.pk} is refunded in full already")
        if value <= 0:
            raise RefundRefused("the refund amount must be greater than zero")
        if value > left:
            raise RefundRefused(
                f"{value} is more than what is left to refund on payment {payment.pk} ({left})"
            )
        processor = get_processor(payment.processor)
        # The same request again (a timeout, a second click) carries the same key and never refunds twice; a
        # refund recorded since, failed ones included, makes the next request a new one.
        earlier = Payment.objects.filter(refund_of=payment, kind=PaymentKind.REFUND).count()
        try:
            result = processor.refund(
                payment_reference=payment.processor_reference, amount_cents=to_cents(value),
                idempotency_key=f"refund-{payment.pk}-{earlier}-{to_cents(payment.amount - left)}-{to_cents(value)}",
                metadata={"payment": str(payment.pk), "organization": payment.organization.slug},
            )  # fmt: skip
        except ProcessorError as exc:
            if exc.unavailable:
                raise RefundUnavailable(
                    f"the processor ({payment.processor}) is not answering: {exc}"
                ) from exc
            raise RefundRefused(f"the processor ({payment.processor}) refused the refund: {exc}") from exc
        status = refund_status(result.status)
        if status == PaymentStatus.FAILED:
            raise RefundRefused(f"the processor's refund {result.id} ended {result.status}")
        # A pending refund (some cards and banks take days) is recorded as such: it reopens nothing until the
        # processor's refund.updated says it succeeded (payments.confirmations.refund_status_apply).
        return return_record(
            payment=payment, bill=bill, kind=PaymentKind.REFUND, amount=value, moment=timezone.now(),
            processor_reference=result.id, actor=user, actor_label=actor_label, status=status,
        )  # fmt: skip


def _amount(raw: Decimal | str) -> Decimal:
    try:
        exact = Decimal(str(raw).strip())
    except InvalidOperation:
        raise RefundRefused(
            f"the refund amount must be dollars and cents such as 25.00, got {raw!r}"
        ) from None
    if not exact.is_finite() or exact.quantize(CENTS) != exact:
        raise RefundRefused(f"the refund amount must be dollars and cents such as 25.00, got {raw!r}")
    return exact.quantize(CENTS)
