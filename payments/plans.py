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

Lock order (docs/architecture.md): the installment's row, then the guarantor's, then the bill
(``payment_record``), then the plan; the import takes patients before bills too.
Decisions (first date, hour, retries, the end of a failed plan): docs/decisions.md, issue 14 H5.
"""

from __future__ import annotations

import calendar
import logging
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from notifications.models import Channel, Kind, Message
from notifications.outbox import messages_create
from notifications.templating import message_values, render_message, template_for
from payments.confirmations import payment_record
from payments.eligibility import payment_settings_get
from payments.models import (
    PAY_LATER_MAX_DAYS,
    PLAN_OPEN_STATES,
    Checkout,
    CheckoutMode,
    CheckoutStatus,
    Installment,
    InstallmentState,
    Payment,
    PaymentLink,
    PaymentPlan,
    PlanKind,
    PlanState,
)
from payments.processors import get_processor
from payments.processors.base import (
    CardSaveRequest,
    HostedPage,
    OffSessionCharge,
    Processor,
    ProcessorError,
    SavedCard,
    to_cents,
)
from practices.models import BILL_OWING_STATES, CENTS, Bill, BillState, Organization, Patient
from practices.services import audit_record
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


# --- Activation (the signed confirmation that the card was saved) ----------------------------------------------


def plan_activate(*, checkout: Checkout, moment: datetime) -> str:
    """H5: the card-save ``checkout`` completed (its signed confirmation, in the caller's transaction): the plan
    takes the saved card from the processor, becomes active and its installments are scheduled; the guarantor
    is ``on_payment_plan`` at once (R2) and their owing campaigns close (D11), as an import's flag does.
    Idempotent: a plan that is not waiting for its card changes nothing. Returns the outcome in words.

    Raises ProcessorError when the processor cannot tell the saved card: the webhook answers 500 and the
    processor delivers the event again."""
    plan = (
        PaymentPlan.objects.select_for_update(of=("self",))
        .select_related("organization", "guarantor")
        .filter(checkout_id=checkout.pk)
        .first()
    )
    if plan is None:
        return "card saved, no plan"
    if plan.state != PlanState.PENDING_CARD or not checkout.setup_reference:
        return f"plan already {plan.state}"
    card = get_processor(plan.processor).saved_card(setup_reference=checkout.setup_reference)
    plan.state, plan.activated_at = PlanState.ACTIVE, moment
    plan.customer_reference, plan.payment_method_reference = card.customer, card.payment_method
    plan.save(update_fields=["state", "activated_at", "customer_reference", "payment_method_reference"])
    organization = plan.organization
    today = organization_today(organization, at=moment)
    for installment in plan.installments.filter(state=InstallmentState.PENDING):
        installment.state = InstallmentState.SCHEDULED
        installment.next_attempt_at = _charge_time(
            organization, installment.due_date, today=today, moment=moment
        )
        installment.save(update_fields=["state", "next_attempt_at"])
    Patient.objects.filter(pk=plan.guarantor_id, on_payment_plan=False).update(on_payment_plan=True)
    closed = Bill.objects.filter(guarantor_id=plan.guarantor_id, state__in=BILL_OWING_STATES).update(
        state=BillState.CLOSED, ended_at=moment
    )
    audit_record(
        organization=organization, actor_label=plan.processor, action="payment_plan.activate", obj=plan,
        changes={"state": [PlanState.PENDING_CARD, PlanState.ACTIVE], "on_payment_plan": True,
                 "campaigns_closed": closed, "installments": plan.installment_count, "total": str(plan.total)},
    )  # fmt: skip
    return "plan active"


def _charge_time(organization: Organization, due: date, *, today: date, moment: datetime) -> datetime:
    """When an installment due on ``due`` is charged: at once when due today (the patient just signed up and
    expects the first payment now), else at CHARGE_HOUR of its date in the organization's zone."""
    if due <= today:
        return moment
    return datetime.combine(due, CHARGE_HOUR, tzinfo=organization.tzinfo)


def plan_activate_for_setup(*, processor: str, reference: str, setup_reference: str, moment: datetime) -> str:
    """``setup_intent.succeeded`` (https://docs.stripe.com/api/setup_intents/object, with our ``card_save``
    reference in its metadata): completes the card-save checkout when its ``checkout.session.completed`` has not
    come yet, and activates the plan; nothing when either was done already."""
    Checkout.objects.filter(
        processor=processor, reference=reference, mode=CheckoutMode.SETUP, status=CheckoutStatus.OPEN
    ).update(status=CheckoutStatus.COMPLETE, completed_at=moment, setup_reference=setup_reference)
    checkout = Checkout.objects.filter(
        processor=processor, reference=reference, mode=CheckoutMode.SETUP
    ).first()
    if checkout is None:
        return "not a card save of ours"
    return plan_activate(checkout=checkout, moment=moment)


def plans_reassert_after_import(organization: Organization, generated_at: Any) -> None:
    """An import writes the PMS's ``on_payment_plan``, which does not know the plans taken here yet: a guarantor
    with an active plan of ours stays on a plan (R2), and a campaign the import opened for them closes (D11).
    Runs inside the import's transaction (a post-import hook; index ``plan_by_guarantor``)."""
    active = PaymentPlan.objects.filter(guarantor_id=OuterRef("pk"), state=PlanState.ACTIVE)
    Patient.objects.filter(organization=organization, on_payment_plan=False).filter(Exists(active)).update(
        on_payment_plan=True
    )
    on_plan = PaymentPlan.objects.filter(guarantor_id=OuterRef("guarantor_id"), state=PlanState.ACTIVE)
    Bill.objects.filter(organization=organization, state__in=BILL_OWING_STATES).filter(
        Exists(on_plan)
    ).update(state=BillState.CLOSED, ended_at=generated_at)


# --- Charging --------------------------------------------------------------------------------------------------

# A decline is tried again after these many days (after the first attempt, the second, the third), at
# CHARGE_HOUR; after the last retry the installment fails and the plan ends (docs/decisions.md).
RETRY_DAYS = (1, 3, 7)
# A claim older than this is a worker that died mid-charge: the installment is taken again, with the same
# idempotency key (the attempt number did not move), so the processor answers with the charge it made, if any.
STALE_CLAIM = timedelta(minutes=10)
CLAIM_BATCH = 200
# The processor was unreachable: try again at a later tick, not counted as an attempt.
UNAVAILABLE_WAIT = timedelta(minutes=30)


@dataclass
class ChargeSummary:
    """What a charging tick did (``installments_charge_due``)."""

    claimed: int = 0
    paid: int = 0
    retrying: int = 0
    failed: int = 0
    unavailable: int = 0
    skipped: int = 0

    def as_json(self) -> dict[str, int]:
        return dict(self.__dict__)


def installments_claim(*, now: datetime, limit: int = CLAIM_BATCH) -> list[int]:
    """Claim due installments of active plans for this worker (``FOR UPDATE SKIP LOCKED``, then ``charging``):
    two workers never hold the same one. Due: scheduled or retrying with ``next_attempt_at`` passed (index
    ``installment_due``), or charging with a stale claim (index ``installment_charging``)."""
    due = Q(state__in=[InstallmentState.SCHEDULED, InstallmentState.RETRYING], next_attempt_at__lte=now) | Q(
        state=InstallmentState.CHARGING, claimed_at__lte=now - STALE_CLAIM
    )
    with transaction.atomic():
        ids = list(
            Installment.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(due, plan__state=PlanState.ACTIVE)
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Installment.objects.filter(pk__in=ids).update(state=InstallmentState.CHARGING, claimed_at=now)
    return ids


def installments_charge_due(*, now: datetime | None = None) -> ChargeSummary:
    """H5: charge every installment whose time has come, each exactly once (the beat task, every 15 minutes)."""
    moment = now or timezone.now()
    summary = ChargeSummary()
    ids = installments_claim(now=moment)
    summary.claimed = len(ids)
    for installment_id in ids:
        outcome = installment_charge(installment_id=installment_id, now=moment)
        setattr(summary, outcome, getattr(summary, outcome) + 1)
    return summary


def installment_charge(*, installment_id: int, now: datetime) -> str:
    """Charge one claimed installment off-session and record the answer. Returns paid, retrying, failed,
    unavailable or skipped (no longer ours: the webhook recorded it, or the plan ended)."""
    installment = (
        Installment.objects.select_related("plan__organization")
        .filter(pk=installment_id, state=InstallmentState.CHARGING)
        .first()
    )
    if installment is None or installment.plan.state != PlanState.ACTIVE:
        return "skipped"
    plan = installment.plan
    attempt = installment.attempts + 1
    try:
        charge = get_processor(plan.processor).charge_saved_card(
            card=SavedCard(customer=plan.customer_reference, payment_method=plan.payment_method_reference),
            amount_cents=to_cents(installment.amount), idempotency_key=f"{installment.idempotency_key}:{attempt}",
            description=f"{plan.organization.name}: payment plan, payment {installment.sequence} of "
                        f"{plan.installment_count}",
            metadata=_charge_metadata(installment),
        )  # fmt: skip
    except ProcessorError as exc:
        if exc.unavailable:
            logger.warning("installment %s: processor unavailable: %s", installment.pk, exc)
            Installment.objects.filter(pk=installment.pk, state=InstallmentState.CHARGING).update(
                state=InstallmentState.RETRYING if installment.attempts else InstallmentState.SCHEDULED,
                next_attempt_at=now + UNAVAILABLE_WAIT, claimed_at=None,
            )  # fmt: skip
            return "unavailable"
        charge = OffSessionCharge(
            payment_reference="", succeeded=False, amount_cents=to_cents(installment.amount), message=str(exc)
        )
    if charge.succeeded:
        recorded = installment_paid(
            processor=plan.processor, key=installment.idempotency_key, payment_reference=charge.payment_reference,
            amount_cents=charge.amount_cents, moment=now,
        )  # fmt: skip
        return "paid" if recorded else "skipped"
    return installment_declined(installment_id=installment.pk, attempt=attempt, charge=charge, now=now)


def _charge_metadata(installment: Installment) -> dict[str, str]:
    """Travels with the PaymentIntent and its events: ``installment`` finds the installment again (the
    processor's own ``payment_intent.succeeded`` for this charge), never the patient's name or care (T4)."""
    return {
        "installment": installment.idempotency_key, "plan": str(installment.plan_id),
        "organization": installment.plan.organization.slug,
    }  # fmt: skip


def installment_paid(
    *, processor: str, key: str, payment_reference: str, amount_cents: int, moment: datetime
) -> bool:
    """Record the payment of the installment ``key`` once, by the same code as a checkout's payment (campaign
    reduced, receipt, export and PMS posting follow from the Payment row), and mark it paid; the plan paid in
    full is completed. Called by the charging tick and by ``payment_intent.succeeded`` (whichever comes
    first; the other finds it paid). False when it was recorded already or is not ours."""
    with transaction.atomic():
        installment = (
            Installment.objects.select_for_update(of=("self",))
            .select_related("plan__checkout")
            .filter(idempotency_key=key)
            .first()
        )
        if installment is None or installment.state == InstallmentState.PAID or installment.payment_id:
            return False
        if installment.state in (InstallmentState.CANCELLED, InstallmentState.FAILED):
            # Money taken for an installment that ended meanwhile (a staff cancel during the charge): still
            # recorded, the money was taken; the campaign has it.
            logger.warning(
                "installment %s was %s when its payment arrived", installment.pk, installment.state
            )
        plan = installment.plan
        # The lock order's next step: the guarantor before the bill (plan_end writes on_payment_plan), as the
        # import takes patients before bills.
        _guarantor_lock(plan.guarantor_id)
        _outcome, payment = payment_record(
            processor=processor, checkout_reference=plan.checkout.reference, payment_reference=payment_reference,
            amount_cents=amount_cents, moment=moment, mode=CheckoutMode.SETUP,
        )  # fmt: skip
        if payment is None:
            payment = Payment.objects.filter(
                processor=processor, processor_reference=payment_reference
            ).first()
        Installment.objects.filter(pk=installment.pk).update(
            state=InstallmentState.PAID, payment=payment, payment_reference=payment_reference, paid_at=moment,
            attempts=F("attempts") + 1 if installment.state == InstallmentState.CHARGING else F("attempts"),
            claimed_at=None, next_attempt_at=None, last_failure="",
        )  # fmt: skip
        if not plan.installments.exclude(state=InstallmentState.PAID).exists():
            plan_end(plan=plan, state=PlanState.COMPLETED, reason="Paid in full.", moment=moment)
    return True


def installment_declined(
    *, installment_id: int, attempt: int, charge: OffSessionCharge, now: datetime
) -> str:
    """A declined attempt: tried again after RETRY_DAYS (state retrying) and the patient told (``plan_retry``);
    after the last retry the installment fails, the plan ends and dunning resumes (``plan_failed``)."""
    with transaction.atomic():
        installment = (
            Installment.objects.select_for_update(of=("self",))
            .select_related("plan__organization", "plan__guarantor")
            .filter(pk=installment_id, state=InstallmentState.CHARGING)
            .first()
        )
        if installment is None:
            return "skipped"
        plan = installment.plan
        installment.attempts = attempt
        installment.last_failure = charge.message[:300]
        installment.payment_reference = charge.payment_reference
        installment.claimed_at = None
        if attempt <= len(RETRY_DAYS):
            retry_on = organization_today(plan.organization, at=now) + timedelta(days=RETRY_DAYS[attempt - 1])
            installment.state = InstallmentState.RETRYING
            installment.next_attempt_at = datetime.combine(
                retry_on, CHARGE_HOUR, tzinfo=plan.organization.tzinfo
            )
            outcome, kind = "retrying", Kind.PLAN_RETRY
        else:
            installment.state, installment.next_attempt_at = InstallmentState.FAILED, None
            outcome, kind = "failed", Kind.PLAN_FAILED
        installment.save(
            update_fields=[
                "attempts",
                "last_failure",
                "payment_reference",
                "claimed_at",
                "state",
                "next_attempt_at",
            ]
        )
        if outcome == "failed":
            plan_end(
                plan=plan, state=PlanState.FAILED, moment=now,
                reason=f"Payment {installment.sequence} declined {attempt} times: {installment.last_failure}",
            )  # fmt: skip
        plan_notice_create(installment=installment, kind=kind, now=now)
    logger.info("installment %s declined (attempt %s): %s", installment_id, attempt, outcome)
    return outcome


# --- The end of a plan -----------------------------------------------------------------------------------------


def plan_end(*, plan: PaymentPlan, state: str, reason: str, moment: datetime, actor: Any = None) -> None:
    """End ``plan`` (completed, failed or cancelled): its open installments are cancelled; a plan that had
    started also gives back what it changed: the guarantor is no longer ``on_payment_plan`` and dunning
    resumes, the campaigns closed since its activation (by it, or by an import's re-assertion) opening again
    while they still owe (the engine computes their next step, with D2's catch-up; docs/decisions.md). A plan
    that never got its card had changed nothing, and changes nothing now."""
    # One being charged right now too: if the charge is taken, ``installment_paid`` still records the money.
    open_states = [
        InstallmentState.PENDING, InstallmentState.SCHEDULED, InstallmentState.RETRYING, InstallmentState.CHARGING,
    ]  # fmt: skip
    before = plan.state
    updated = PaymentPlan.objects.filter(pk=plan.pk, state__in=PLAN_OPEN_STATES).update(
        state=state, ended_at=moment, end_reason=reason[:300]
    )
    if not updated:
        return
    plan.state, plan.ended_at, plan.end_reason = state, moment, reason[:300]
    Installment.objects.filter(plan=plan, state__in=open_states).update(
        state=InstallmentState.CANCELLED, next_attempt_at=None
    )
    changes: dict[str, Any] = {"state": [before, state], "reason": reason[:300]}
    if before == PlanState.ACTIVE and plan.activated_at is not None:
        Patient.objects.filter(pk=plan.guarantor_id).update(on_payment_plan=False)
        changes["on_payment_plan"] = False
        changes["campaigns_reopened"] = Bill.objects.filter(
            guarantor_id=plan.guarantor_id, state=BillState.CLOSED, closed_reason="", amount_due__gt=0,
            ended_at__gte=plan.activated_at,
        ).update(state=BillState.ACTIVE, ended_at=None, next_dunning_date=None)  # fmt: skip
    audit_record(
        organization=plan.organization, actor=actor, actor_label="" if actor else "payments",
        action=f"payment_plan.{state}", obj=plan, changes=changes,
    )  # fmt: skip


def plan_cancel(*, plan: PaymentPlan, actor: Any, reason: str, now: datetime | None = None) -> PaymentPlan:
    """Staff cancel a plan (audited, T5): its open installments are cancelled and dunning resumes, as when a
    plan fails. An installment being charged at this moment still records its payment if it is taken."""
    moment = now or timezone.now()
    with transaction.atomic():
        # The lock order of payments.plans: installments, the guarantor, the bill, then the plan.
        list(Installment.objects.select_for_update().filter(plan_id=plan.pk).values_list("pk", flat=True))
        _guarantor_lock(plan.guarantor_id)
        bills = Bill.objects.select_for_update(no_key=True).filter(guarantor_id=plan.guarantor_id)
        list(bills.order_by("pk").values_list("pk", flat=True))
        locked = PaymentPlan.objects.select_for_update().select_related("organization").get(pk=plan.pk)
        if locked.state not in PLAN_OPEN_STATES:
            raise PlanRefused(f"This plan has ended already ({locked.get_state_display()}).")
        plan_end(plan=locked, state=PlanState.CANCELLED, reason=reason or "Cancelled by staff.", moment=moment,
                 actor=actor)  # fmt: skip
    return locked


def _guarantor_lock(guarantor_id: int) -> None:
    list(Patient.objects.select_for_update(no_key=True).filter(pk=guarantor_id).values_list("pk", flat=True))


# --- Notices ---------------------------------------------------------------------------------------------------


def plan_notice_create(*, installment: Installment, kind: str, now: datetime) -> list[Message]:
    """Tell the patient of a declined installment by text and email (``plan_retry``: when it is tried again;
    ``plan_failed``: the plan ended), from the system templates (or their translation), through the outbox
    (N1 re-checks, opt-outs, quiet hours apply). No bill: the plan's campaign is closed while the plan runs.
    Once per installment, kind and attempt."""
    plan = installment.plan
    guarantor, organization = plan.guarantor, plan.organization
    attempt = {"installment_id": installment.pk, "attempt": installment.attempts}
    # Key lookups, not ``context__contains``: SQLite (the embedded default) has no JSON containment.
    if Message.objects.filter(
        patient=guarantor,
        kind=kind,
        context__installment_id=installment.pk,
        context__attempt=installment.attempts,
    ).exists():
        return []
    retry_on = (
        installment.next_attempt_at.astimezone(organization.tzinfo).date()
        if installment.next_attempt_at
        else None
    )
    values = message_values(
        first_name=guarantor.first_name, last_name=guarantor.last_name, organization=organization,
        amount_due=installment.amount, pay_ref="", due_date=retry_on, statement_date=None,
        preferred_name=guarantor.preferred_name, language=guarantor.language,
    )  # fmt: skip
    messages = []
    for channel, destination in ((Channel.SMS, guarantor.mobile_phone), (Channel.EMAIL, guarantor.email)):
        if not destination:
            continue
        template = template_for(
            organization=organization, kind=kind, channel=channel, language=guarantor.language
        )
        subject, body = render_message(template=template, values=values)
        messages.append(
            Message(
                organization=organization, patient=guarantor, kind=kind, channel=channel, template=template,
                subject=subject if channel == Channel.EMAIL else "", body=body, destination=destination,
                context={**values, **attempt, "plan_id": plan.pk},
            )
        )  # fmt: skip
    return messages_create(messages, now=now) if messages else []
