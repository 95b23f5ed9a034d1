"""Payment plans and pay-later (H5): what the patient may choose, the sign-up, activation from the processor's
signed confirmation, the off-session charges of each installment, retries, and the end of a plan.

The card stays with the processor: the sign-up starts its hosted card-save page (``card_save_start``), and the
signed ``checkout.session.completed`` of that page (or ``setup_intent.succeeded``) activates the plan
(``plan_activate``): the guarantor is ``on_payment_plan`` at once (R2) and the dunning campaign closes (D11).

Charging (``installments_charge_due``, run by the beat task every 15 minutes): a due installment is claimed by
one worker (``FOR UPDATE SKIP LOCKED`` then ``state = charging``), charged with the idempotency key
``<installment key>:<attempt>`` (the attempt number moves only once its answer is recorded, so a worker that
died between the charge and the record, whose claim goes stale and is taken again, sends the same key and the
processor answers with the same PaymentIntent instead of charging again), and its payment is recorded by the
same code as a checkout's (``payments.confirmations.payment_record``). The processor's own
``payment_intent.succeeded`` for that charge finds it recorded (or records it, when the worker died first).

Lock order (docs/architecture.md): the installment's row, then the bill (``payment_record``), then the plan.
Decisions (first date, hour, retries, the end of a failed plan): docs/decisions.md, issue 14 H5.
"""

from __future__ import annotations

import calendar
import logging
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from payments.eligibility import payment_settings_get
from payments.models import (
    PAY_LATER_MAX_DAYS,
    PLAN_OPEN_STATES,
    Checkout,
    CheckoutMode,
    Installment,
    InstallmentState,
    PaymentLink,
    PaymentPlan,
    PlanKind,
    PlanState,
)
from payments.processors import get_processor
from payments.processors.base import CardSaveRequest, HostedPage, Processor
from practices.models import BILL_OWING_STATES, CENTS, Bill, Patient
from practices.timezones import organization_today

logger = logging.getLogger(__name__)

# An installment is charged at this local hour of its date (the organization's zone): inside business hours, so
# that a patient whose card declines can call the practice the same day. A first installment due the day of
# sign-up, after that hour, is charged at the next tick.
CHARGE_HOUR = time(10, 0)


class PlanRefused(ValueError):
    """The plan was not started (a count, date or amount out of bounds, plans off, one open already); the
    message is for the patient."""


@dataclass(frozen=True)
class PlanOptions:
    """What the payment page may offer for a link (H5). ``months``: the installment counts allowed, each of at
    least ``plan_min_installment`` (2 to ``plan_max_months``); ``pay_later``: one payment on a date up to
    ``pay_later_latest``; ``reason_none``: why nothing is offered, for the patient ('' when something is)."""

    balance: Decimal
    months: list[int] = field(default_factory=list)
    pay_later: bool = False
    pay_later_latest: date = date.min
    reason_none: str = ""


def plan_options(*, link: PaymentLink, now: datetime | None = None) -> PlanOptions:
    """The plans the patient of ``link`` may choose now: the campaign's whole balance in 2 to
    ``plan_max_months`` monthly installments of at least ``plan_min_installment`` each, or paid later in one
    (``plan_max_months`` 1 or more). Nothing when plans are off, the campaign ended or a plan is open."""
    moment = now or timezone.now()
    bill = Bill.objects.select_related("organization", "guarantor").get(pk=link.bill_id)
    organization = bill.organization
    balance = max(bill.amount_due, Decimal("0.00")).quantize(CENTS)
    latest = organization_today(organization, at=moment) + timedelta(days=PAY_LATER_MAX_DAYS)
    settings = payment_settings_get(organization=organization)

    def none(reason: str) -> PlanOptions:
        return PlanOptions(balance=balance, pay_later_latest=latest, reason_none=reason)

    if bill.state not in BILL_OWING_STATES or link.expires_at <= moment or balance <= 0:
        return none("This payment link is no longer active.")
    if settings.plan_max_months == 0:
        return none(f"{organization.name} does not offer payment plans online. Please call the practice.")
    # A plan still waiting for its card does not count: signing up again replaces it (``_pending_replace``).
    if PaymentPlan.objects.filter(guarantor_id=bill.guarantor_id, state=PlanState.ACTIVE).exists():
        return none("A payment plan is already set up for this account.")
    minimum = settings.plan_min_installment
    months = [count for count in range(2, settings.plan_max_months + 1) if _part(balance, count) >= minimum]
    return PlanOptions(balance=balance, months=months, pay_later=True, pay_later_latest=latest)


def _part(total: Decimal, count: int) -> Decimal:
    """Each installment but the last (which takes the remainder): the total divided evenly, down to the cent."""
    return (total / count).quantize(CENTS, rounding=ROUND_DOWN)


def plan_schedule(*, total: Decimal, count: int, first_date: date) -> list[tuple[date, Decimal]]:
    """``count`` monthly installments of ``total`` from ``first_date``: equal parts in exact cents, the last
    taking the remainder; each on the day of the month of ``first_date``, or the month's last day when it has
    none (a plan started on the 31st is due on the 28th or 29th in February, and on the 31st again in March)."""
    if count < 1 or total <= 0:
        raise ValueError("a schedule needs a positive total and at least one installment")
    part = _part(total, count)
    dates = [_months_after(first_date, months) for months in range(count)]
    amounts = [part] * (count - 1) + [total - part * (count - 1)]
    return list(zip(dates, amounts, strict=True))


def _months_after(start: date, months: int) -> date:
    year, month = divmod(start.month - 1 + months, 12)
    year, month = start.year + year, month + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def plan_start(
    *, link: PaymentLink, kind: str, months: int | None = None, pay_date: date | None = None, success_url: str,
    cancel_url: str, now: datetime | None = None, processor: Processor | None = None,
) -> HostedPage:  # fmt: skip
    """H5: sign the patient of ``link`` up for a plan of the campaign's balance: ``kind`` monthly (``months``
    installments, the first due today) or pay_later (one on ``pay_date``). Creates the card-save checkout, the
    plan (waiting for the card) and its installments, and returns the processor's hosted card-save page; the
    plan starts on the processor's signed confirmation that the card was saved (``plan_activate``).

    ``success_url`` may hold ``{reference}``: it is replaced by the checkout's reference (the return page
    finds the checkout, and ``plan_for_checkout`` the plan, by it). Raises PlanRefused (the message is for the
    patient) and ProcessorError (``unavailable``: the processor is down; nothing was kept).
    """
    moment = now or timezone.now()
    processor = processor or get_processor()
    options = plan_options(link=link, now=moment)
    bill = Bill.objects.select_related("organization").get(pk=link.bill_id)
    organization = bill.organization
    schedule = _schedule_chosen(options, kind=kind, months=months, pay_date=pay_date,
                                today=organization_today(organization, at=moment))  # fmt: skip
    reference = f"chk_{secrets.token_urlsafe(18)}"
    page = processor.card_save_start(
        request=CardSaveRequest(
            reference=reference, description=f"{organization.name}: payment plan",
            success_url=success_url.replace("{reference}", reference), cancel_url=cancel_url,
            metadata={"organization": organization.slug},
        )
    )  # fmt: skip
    try:
        with transaction.atomic():
            _pending_replace(guarantor_id=bill.guarantor_id, moment=moment)
            checkout = Checkout.objects.create(
                organization=organization, link=link, bill=bill, mode=CheckoutMode.SETUP, reference=reference,
                processor=processor.name, session_id=page.session_id,
            )  # fmt: skip
            plan = PaymentPlan.objects.create(
                organization=organization, guarantor_id=bill.guarantor_id, bill=bill, checkout=checkout,
                kind=kind, total=options.balance, installment_count=len(schedule), processor=processor.name,
                created_at=moment,
            )  # fmt: skip
            Installment.objects.bulk_create(
                Installment(plan=plan, sequence=number, due_date=due, amount=amount,
                            idempotency_key=f"inst_{secrets.token_urlsafe(24)}")
                for number, (due, amount) in enumerate(schedule, start=1)
            )  # fmt: skip
    except IntegrityError:
        # Another sign-up of this guarantor won the race (one open plan per guarantor).
        raise PlanRefused("A payment plan is already set up for this account.") from None
    logger.info("plan %s started for bill %s (%s, %s installments)", plan.pk, bill.pk, kind, len(schedule))
    return page


def _schedule_chosen(
    options: PlanOptions, *, kind: str, months: int | None, pay_date: date | None, today: date
) -> list[tuple[date, Decimal]]:
    if options.reason_none:
        raise PlanRefused(options.reason_none)
    if kind == PlanKind.MONTHLY:
        if months not in options.months:
            if not options.months:
                raise PlanRefused("This balance is too small to split into monthly payments.")
            raise PlanRefused(
                f"Choose between {options.months[0]} and {options.months[-1]} monthly payments."
            )
        return plan_schedule(total=options.balance, count=months, first_date=today)
    if kind == PlanKind.PAY_LATER:
        if not options.pay_later:
            raise PlanRefused("Paying later is not offered for this balance.")
        if pay_date is None or not today < pay_date <= options.pay_later_latest:
            raise PlanRefused(
                f"Choose a date after today and no later than {options.pay_later_latest:%m/%d/%Y}."
            )
        return [(pay_date, options.balance)]
    raise PlanRefused("Choose monthly payments or a date to pay later.")


def _pending_replace(*, guarantor_id: int, moment: datetime) -> None:
    """A patient who left the card page and signs up again replaces the plan that waited for a card: one open
    plan per guarantor, and the abandoned one would block the new sign-up for good."""
    stale = PaymentPlan.objects.filter(guarantor_id=guarantor_id, state=PlanState.PENDING_CARD)
    Installment.objects.filter(plan__in=stale).update(state=InstallmentState.CANCELLED, next_attempt_at=None)
    stale.update(state=PlanState.CANCELLED, ended_at=moment, end_reason="Replaced by a new sign-up.")


def plan_for_checkout(checkout: Checkout) -> PaymentPlan | None:
    """The plan that ``checkout`` (a card-save checkout) saves a card for; None for a payment checkout."""
    return PaymentPlan.objects.filter(checkout=checkout).first()


def plan_open_for(guarantor: Patient) -> PaymentPlan | None:
    """The guarantor's open plan (waiting for its card, or active), if any (index ``plan_by_guarantor``)."""
    return PaymentPlan.objects.filter(guarantor=guarantor, state__in=PLAN_OPEN_STATES).first()
