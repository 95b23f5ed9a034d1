"""The patient payment page's services (P2, P3, H1: the hosted checkout's start) and the payments export (§10
``export_payments``, H3: refunds and disputes as negative payments)."""

from __future__ import annotations

import enum
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Subquery, Sum
from django.utils import timezone

from payments.eligibility import payment_settings_get
from payments.models import Checkout, CheckoutMode, Payment, PaymentLink, PaymentStatus
from payments.processors import get_processor
from payments.processors.base import CheckoutRequest, Processor, ProcessorError, to_cents
from payments.selectors import money_movements_since
from practices.models import (
    BILL_OWING_STATES,
    BUCKETS,
    CENTS,
    Account,
    AgingCategory,
    Bill,
    BillSource,
    BillState,
    Organization,
)
from practices.services import audit_record

logger = logging.getLogger(__name__)

DOB_MAX_FAILURES = 5
DOB_LOCK = timedelta(minutes=15)
# After this many lockouts the link stops until staff re-issue it (issue 11): 3 x 5 guesses of the ~1 200
# MM/YYYY values a lifetime allows, instead of 20 a lockout window for as long as the link lives.
DOB_MAX_LOCKOUTS = 3
MONTH_YEAR = re.compile(r"^\s*(0[1-9]|1[0-2])\s*/\s*(\d{4})\s*$")


class DobOutcome(enum.StrEnum):
    VERIFIED = "verified"
    MISMATCH = "mismatch"
    LOCKED = "locked"
    BLOCKED = "blocked"  # too many lockouts: the practice must re-issue the link
    # No date of birth on file (the PMS had none, or only its "no date", I1a): nothing can match, so nothing
    # is counted either; the page tells the patient to call the practice.
    NO_DATE_OF_BIRTH = "no_date_of_birth"


class PaymentRefused(ValueError):
    """The payment was not started (amount out of range, campaign ended); the message is for the patient."""


class PaymentUnavailable(RuntimeError):
    """The processor could not be reached; nothing was started or charged. The message is for the patient."""


def month_year_parse(value: str) -> tuple[int, int]:
    """``MM/YYYY`` → (month, year); ValueError for anything else (MM/DD/YY included)."""
    match = MONTH_YEAR.match(value or "")
    if match is None:
        raise ValueError("Enter the date of birth as MM/YYYY, for example 04/1975.")
    return int(match.group(1)), int(match.group(2))


def dob_verify(*, link: PaymentLink, month_year: str, now: datetime | None = None) -> DobOutcome:
    """P2: compare MM/YYYY with the guarantor's date of birth; five failures lock the link for 15 minutes,
    and the third lockout blocks it until staff re-issue it (audited; the guarantor's dashboard page says so).

    The link row is locked for each guess, so parallel guesses cannot run past the counter: every attempt
    (right or wrong) is refused while a lock holds. A match resets the counter. Raises ValueError when
    ``month_year`` is not MM/YYYY (not counted as a failure: it reveals nothing).
    """
    moment = now or timezone.now()
    month, year = month_year_parse(month_year)
    dob = link.bill.guarantor.date_of_birth
    if dob is None:
        # Counting guesses that cannot succeed would only lock the patient out and block the link.
        return DobOutcome.NO_DATE_OF_BIRTH
    matched = (dob.month, dob.year) == (month, year)
    with transaction.atomic():
        # The link row, locked: each guess reads the counter it moves, so a guess's answer is its own (an
        # UPDATE then a re-read let a parallel guess's lock show through).
        current = (
            PaymentLink.objects.select_for_update(no_key=True)
            .filter(pk=link.pk)
            .values_list("failed_attempts", "locked_until", "lockouts", "blocked_at")
            .first()
        )
        if current is None:
            return DobOutcome.LOCKED
        attempts, locked_until, lockouts, blocked_at = current
        if blocked_at is not None:
            return DobOutcome.BLOCKED
        if locked_until is not None and locked_until > moment:
            return DobOutcome.LOCKED
        if matched:
            attempts, locked_until = 0, None
        else:
            # A lock that ran out: counting starts again.
            attempts = 1 if locked_until is not None else attempts + 1
            locked_until = moment + DOB_LOCK if attempts >= DOB_MAX_FAILURES else None
            if locked_until is not None:
                lockouts += 1
                if lockouts >= DOB_MAX_LOCKOUTS:
                    blocked_at = moment
        PaymentLink.objects.filter(pk=link.pk).update(
            failed_attempts=attempts, locked_until=locked_until, lockouts=lockouts, blocked_at=blocked_at
        )
        if blocked_at is not None:
            audit_record(
                organization=link.organization, actor_label="patient", action="payment_link.blocked", obj=link,
                changes={"lockouts": [lockouts - 1, lockouts], "bill": link.bill.bill_id},
            )  # fmt: skip
    link.failed_attempts, link.locked_until, link.lockouts, link.blocked_at = (
        attempts,
        locked_until,
        lockouts,
        blocked_at,
    )
    if matched:
        return DobOutcome.VERIFIED
    if blocked_at is not None:
        logger.warning("payment link %s blocked after %s lockouts", link.pk, lockouts)
        return DobOutcome.BLOCKED
    if locked_until is not None:
        logger.info("payment link %s locked after %s failed checks", link.pk, DOB_MAX_FAILURES)
        return DobOutcome.LOCKED
    return DobOutcome.MISMATCH


def dob_locked(*, link: PaymentLink, now: datetime | None = None) -> bool:
    moment = now or timezone.now()
    return link.locked_until is not None and link.locked_until > moment


@dataclass(frozen=True)
class AmountBounds:
    """What the patient may pay now (H1): at least ``minimum`` (the organization's minimum payment, or the whole
    balance when less), at most ``maximum`` (what is owed)."""

    minimum: Decimal
    maximum: Decimal


def amount_bounds(*, bill: Bill) -> AmountBounds:
    owed = max(bill.amount_due, Decimal("0.00"))
    minimum = payment_settings_get(organization=bill.organization).min_payment_amount
    return AmountBounds(minimum=max(min(minimum, owed), CENTS), maximum=owed)


def amount_parse(raw: Any) -> Decimal:
    """The amount the patient typed, in dollars and cents exactly; PaymentRefused for anything else."""
    text = str(raw if raw is not None else "").strip().replace(",", "").removeprefix("$")
    try:
        exact = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        raise PaymentRefused("Enter an amount such as 25.00.") from None
    if not exact.is_finite():
        raise PaymentRefused("Enter an amount such as 25.00.")
    amount = exact.quantize(CENTS)
    if amount != exact:
        raise PaymentRefused("Enter an amount in dollars and cents, such as 25.00.")
    return amount


def checkout_begin(
    *,
    link: PaymentLink,
    amount: Decimal,
    success_url: Callable[[str], str],
    cancel_url: str,
    now: datetime | None = None,
    processor: Processor | None = None,
) -> tuple[Checkout, str]:
    """H1: start a hosted checkout of ``amount`` for the link's campaign; returns it with the URL of the
    processor's page, where the patient goes to pay. ``success_url(reference)`` is where the processor sends
    the patient back.

    Nothing is charged here and nothing is locked: the money moves on the processor's page, and our records
    change when its signed confirmation arrives (``payments.confirmations``). Raises PaymentRefused for an
    amount out of bounds or a campaign that ended, PaymentUnavailable when the processor cannot be reached
    (nothing was started; the patient may try again).
    """
    moment = now or timezone.now()
    processor = processor or get_processor()
    bill = Bill.objects.select_related("organization").get(pk=link.bill_id)
    if bill.state not in BILL_OWING_STATES or link.expires_at <= moment:
        raise PaymentRefused("This payment link is no longer active.")
    bounds = amount_bounds(bill=bill)
    if amount <= 0:
        raise PaymentRefused("The amount must be greater than zero.")
    if amount > bounds.maximum:
        raise PaymentRefused(f"The amount cannot be more than the amount due ({_dollars(bounds.maximum)}).")
    if amount < bounds.minimum:
        raise PaymentRefused(f"The smallest payment accepted is {_dollars(bounds.minimum)}.")
    reference = f"chk_{secrets.token_urlsafe(18)}"
    organization = bill.organization
    try:
        page = processor.checkout_start(
            request=CheckoutRequest(
                reference=reference, amount_cents=to_cents(amount),
                description=f"{organization.name}: payment on account", success_url=success_url(reference),
                cancel_url=cancel_url, metadata={"organization": organization.slug},
            )
        )  # fmt: skip
    except ProcessorError as exc:
        logger.warning("checkout could not start with %s: %s", processor.name, exc)
        raise PaymentUnavailable(
            "The payment service is not answering right now. Nothing was charged; please try again in a few "
            "minutes."
        ) from exc
    checkout = Checkout.objects.create(
        organization=organization, link=link, bill=bill, mode=CheckoutMode.PAYMENT, reference=reference,
        processor=processor.name, session_id=page.session_id, amount=amount,
    )  # fmt: skip
    return checkout, page.url


def _dollars(amount: Decimal) -> str:
    return f"${amount:,.2f}"


@dataclass(frozen=True)
class AgingNow:
    """A family's balance by age as the patient should see it today (``account_aging_now``)."""

    buckets: dict[str, Decimal]  # keyed by practices.models.BUCKETS
    category: str  # AgingCategory value: the oldest bucket still owing, '' when nothing is


def account_aging_now(*, account: Account) -> AgingNow:
    """The account's aging buckets less the payments we took since the PMS's figures (``account.as_of``).

    The PMS has not posted those payments yet, so its buckets still hold them: after a partial payment the
    patient saw the old balance by age beside the reduced amount due (issue 12). A payment is applied to the
    oldest charges first, as practice-management systems apply a guarantor's payment by default; what is left
    after every owing bucket is a credit in the newest one. The same payments as
    ``payments_reapply_after_import`` (succeeded, created after the feed's ``generated_at``).
    """
    buckets = {key: getattr(account, f"bucket_{key}") for key in BUCKETS}
    unposted = Payment.objects.filter(
        bill__guarantor_id=account.guarantor_id, status=PaymentStatus.SUCCEEDED, created_at__gt=account.as_of
    ).aggregate(total=Sum("amount"))["total"] or Decimal("0.00")
    left = unposted
    for key in reversed(BUCKETS):
        taken = min(max(buckets[key], Decimal("0.00")), left)
        buckets[key] -= taken
        left -= taken
    buckets[BUCKETS[0]] -= left
    oldest = next((key for key in reversed(BUCKETS) if buckets[key] > 0), "")
    return AgingNow(buckets=buckets, category=AgingCategory(oldest).value)


def payments_export_rows(*, organization: Organization, since: date) -> list[dict[str, str]]:
    """Succeeded payments of ``organization`` recorded on or after ``since`` (its time zone), oldest first, with
    refunds and disputes as negative payments naming the payment they return (H3)."""
    start = datetime.combine(since, time.min, tzinfo=organization.tzinfo)
    payments = money_movements_since(organization=organization, since=start)
    return [
        {
            "payment_id": str(payment.pk),
            "created_at": payment.created_at.astimezone(UTC).isoformat(timespec="seconds"),
            "guarantor_id": payment.bill.guarantor.external_id,
            "bill_id": payment.bill.bill_id,
            "kind": payment.kind,
            "amount": str(payment.amount.quantize(CENTS)),
            "refund_of": str(payment.refund_of_id or ""),
            "status": payment.status,
            "processor": payment.processor,
            "processor_reference": payment.processor_reference,
            "card_last4": payment.card_last4,
        }
        for payment in payments
    ]


def payments_reapply_after_import(organization: Organization, generated_at: datetime) -> None:
    """I6 vs P3: an import sets a request campaign's amount to the guarantor's patient portion as of the feed's
    `generated_at`. Payments we took after that moment are not in the PMS's figures yet, so they are taken off
    again; a campaign they pay in full is closed as paid. Runs inside the import's transaction."""
    unposted = (
        Payment.objects.filter(
            bill=OuterRef("pk"), status=PaymentStatus.SUCCEEDED, created_at__gt=generated_at
        )
        .values("bill")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    active = Bill.objects.filter(
        organization=organization, source=BillSource.REQUEST, state__in=BILL_OWING_STATES
    )
    active.filter(Exists(unposted)).update(amount_due=F("amount_due") - Subquery(unposted))
    active.filter(amount_due__lte=0).update(state=BillState.PAID, ended_at=generated_at)
