"""Recording what the processor confirms (H2, H3): payments, refunds and disputes, from signed events only.

``processor_event_apply`` is the one entry: the webhooks (Stripe's and the sandbox's) verify the signature with
the SDK and hand the event here. Each event is applied once per its id (``ProcessorEvent``, written in the same
transaction as its effect) and each payment once per its processor id (the PaymentIntent: a checkout announces
it twice, as ``checkout.session.completed`` and ``payment_intent.succeeded``; the first records it, the other
finds it). Amounts are the processor's cents, turned into dollars exactly.

Refunds have a status (``refund.*`` events): only a succeeded one reopens what it returns and is exported and
posted; a pending one holds the amount (nothing more can be refunded over it); a failed one holds nothing. A
dispute closed ``won`` gives the amount back (a reversal row, posted as a positive payment); ``lost`` keeps it
owed.

Lock order (docs/architecture.md): the event's row first (its unique index makes a concurrent duplicate wait),
then the bill ``FOR NO KEY UPDATE``; the organization is never locked. A staff refund holds the same bill lock
across its call to the processor, so the ``charge.refunded`` that Stripe sends for it waits and then finds it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from payments.models import (
    Checkout,
    CheckoutMode,
    CheckoutStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    ProcessorEvent,
    ReviewReason,
)
from payments.processors.base import ProcessorEvent as Event
from payments.processors.base import from_cents
from payments.receipts import receipt_email_later
from practices.models import BILL_OWING_STATES, AuditEvent, Bill, BillSource, BillState
from practices.services import audit_record

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    """What an event did: ``duplicate`` when its id had been applied already; ``outcome`` in words."""

    duplicate: bool
    outcome: str
    payment: Payment | None = None


def processor_event_apply(*, processor: str, event: Event, now: datetime | None = None) -> Applied:
    """Apply a verified event of ``processor`` once (H2, T3). Events of a type the product does not use, or
    about objects that are not ours, are recorded as such and change nothing else."""
    moment = now or timezone.now()
    handler = HANDLERS.get(event.type)
    again = _announced_again(processor=processor, event=event, moment=moment)
    if again is not None:
        return again
    with transaction.atomic():
        event_row = _event_claim(processor=processor, event=event, moment=moment)
        if event_row is None:
            return Applied(duplicate=True, outcome="duplicate")
        outcome, payment = handler(processor, event.object, moment) if handler else ("ignored", None)
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {_EVENTS} SET outcome = %s WHERE id = %s", [outcome[:200], event_row])  # noqa: S608
    return Applied(duplicate=False, outcome=outcome, payment=payment)


_EVENTS = connection.ops.quote_name(ProcessorEvent._meta.db_table)


def _event_claim(*, processor: str, event: Event, moment: datetime, outcome: str = "") -> int | None:
    """Insert the event's row (with ``outcome`` when it is known already); None when it is there already (or a
    concurrent delivery holds it: then this waits for that transaction and sees its row)."""
    statement = (
        f"INSERT INTO {_EVENTS} (processor, event_id, type, received_at, outcome) VALUES (%s, %s, %s, %s, %s) "  # noqa: S608
        "ON CONFLICT (processor, event_id) DO NOTHING RETURNING id"
    )
    with connection.cursor() as cursor:
        received = ProcessorEvent._meta.get_field("received_at").get_db_prep_save(moment, connection)
        cursor.execute(statement, [processor, event.id[:255], event.type[:60], received, outcome])
        row = cursor.fetchone()
    return int(row[0]) if row else None


def _announced_again_portable(
    *, processor: str, event: Event, moment: datetime, reference: str
) -> Applied | None:
    """``_announced_again`` in two statements, for SQLite (the embedded default), which has no data-modifying
    WITH: the check, then the event's row (its unique key still makes a retry a duplicate)."""
    recorded = Payment.objects.filter(
        processor=processor, processor_reference=reference, kind=PaymentKind.PAYMENT
    ).exists()
    if not recorded:
        return None
    if _event_claim(processor=processor, event=event, moment=moment, outcome=ALREADY_RECORDED) is None:
        return Applied(duplicate=True, outcome="duplicate")
    return Applied(duplicate=False, outcome=ALREADY_RECORDED)


def _announced_payment(event: Event) -> str:
    """The PaymentIntent that a payment announcement names (``payment_intent.succeeded`` of a checkout of ours,
    a paid ``checkout.session.completed``), or "" for any other event: what ``payment_record`` would record."""
    obj = event.object
    if event.type == "payment_intent.succeeded" and (obj.get("metadata") or {}).get("checkout"):
        return str(obj.get("id") or "")
    if (
        event.type == "checkout.session.completed"
        and obj.get("mode") != "setup"
        and obj.get("payment_status") == "paid"
    ):
        return str(obj.get("payment_intent") or "")
    return ""


def _announced_again(*, processor: str, event: Event, moment: datetime) -> Applied | None:
    """The second announcement of a payment recorded already (a checkout announces each payment twice), or a
    retry of either, in one statement and no transaction of its own: the event's row is written with the outcome
    it would have had ("already recorded"), or it was there (a duplicate). None when the payment is not recorded
    yet (or the event announces none): the whole path decides, with its locks. What is committed is only read
    here, so a payment being recorded concurrently is not seen and the whole path waits for it as before."""
    reference = _announced_payment(event)
    if not reference:
        return None
    if connection.vendor != "postgresql":
        return _announced_again_portable(processor=processor, event=event, moment=moment, reference=reference)
    statement = (
        f"WITH known AS (SELECT EXISTS (SELECT 1 FROM {_PAYMENTS} WHERE processor = %s AND processor_reference = %s "  # noqa: S608
        "AND kind = %s) AS recorded), "
        f"claimed AS (INSERT INTO {_EVENTS} (processor, event_id, type, received_at, outcome) "
        "SELECT %s, %s, %s, %s, %s FROM known WHERE known.recorded "
        "ON CONFLICT (processor, event_id) DO NOTHING RETURNING id) "
        "SELECT known.recorded, EXISTS (SELECT 1 FROM claimed) FROM known"
    )
    received = ProcessorEvent._meta.get_field("received_at").get_db_prep_save(moment, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            statement,
            [processor, reference, PaymentKind.PAYMENT, processor, event.id[:255], event.type[:60], received,
             ALREADY_RECORDED],
        )  # fmt: skip
        recorded, claimed = cursor.fetchone()
    if not recorded:
        return None
    return (
        Applied(duplicate=False, outcome=ALREADY_RECORDED)
        if claimed
        else Applied(duplicate=True, outcome="duplicate")
    )


ALREADY_RECORDED = "already recorded"
Outcome = tuple[str, Payment | None]


def _session_completed(processor: str, session: dict[str, Any], moment: datetime) -> Outcome:
    """https://docs.stripe.com/api/checkout/sessions/object: ``payment_status`` is ``paid`` once the money is
    taken (cards are paid at completion); a setup session leaves a SetupIntent for a plan (H5)."""
    reference = str(
        session.get("client_reference_id") or (session.get("metadata") or {}).get("checkout") or ""
    )
    if session.get("mode") == "setup":
        updated = Checkout.objects.filter(
            processor=processor, reference=reference, mode=CheckoutMode.SETUP, status=CheckoutStatus.OPEN
        ).update(
            status=CheckoutStatus.COMPLETE, completed_at=moment, setup_reference=str(session.get("setup_intent") or "")
        )  # fmt: skip
        return _card_saved(
            processor, reference, str(session.get("setup_intent") or ""), moment, updated
        ), None
    if session.get("payment_status") != "paid":
        return f"not paid yet ({session.get('payment_status')})", None
    return payment_record(
        processor=processor, checkout_reference=reference, payment_reference=str(session.get("payment_intent") or ""),
        amount_cents=int(session.get("amount_total") or 0), moment=moment,
    )  # fmt: skip


def _card_saved(processor: str, reference: str, setup_reference: str, moment: datetime, updated: int) -> str:
    """A plan's card-save checkout completed: the plan starts (H5, ``payments.plans.plan_activate``)."""
    from payments.plans import plan_activate_for_setup

    outcome = plan_activate_for_setup(
        processor=processor, reference=reference, setup_reference=setup_reference, moment=moment
    )
    return f"card saved, {outcome}" if updated else outcome


def _setup_succeeded(processor: str, setup: dict[str, Any], moment: datetime) -> Outcome:
    """https://docs.stripe.com/api/setup_intents/object: a SetupIntent of a card-save checkout of ours (its
    metadata carries our reference as ``card_save``) saved the card; whichever of this and the session's
    ``checkout.session.completed`` comes first starts the plan, the other changes nothing."""
    reference = str((setup.get("metadata") or {}).get("card_save") or "")
    if not reference or setup.get("status") != "succeeded":
        return "not a card save of ours", None
    from payments.plans import plan_activate_for_setup

    return plan_activate_for_setup(
        processor=processor, reference=reference, setup_reference=str(setup.get("id") or ""), moment=moment
    ), None


def _intent_succeeded(processor: str, intent: dict[str, Any], moment: datetime) -> Outcome:
    """https://docs.stripe.com/api/payment_intents/object: ``amount_received`` is what was taken. An
    off-session charge of a plan's installment (metadata ``installment``) is the installment's payment: the
    charging tick records it, or this does when the tick died between the charge and the record."""
    installment = str((intent.get("metadata") or {}).get("installment") or "")
    if installment:
        from payments.plans import installment_paid

        recorded = installment_paid(
            processor=processor, key=installment, payment_reference=str(intent.get("id") or ""),
            amount_cents=int(intent.get("amount_received") or 0), moment=moment,
        )  # fmt: skip
        return ("installment recorded" if recorded else "installment already recorded"), None
    reference = str((intent.get("metadata") or {}).get("checkout") or "")
    if not reference:
        return "not a checkout of ours", None
    return payment_record(
        processor=processor, checkout_reference=reference, payment_reference=str(intent.get("id") or ""),
        amount_cents=int(intent.get("amount_received") or 0), moment=moment,
    )  # fmt: skip


def _intent_failed(processor: str, intent: dict[str, Any], moment: datetime) -> Outcome:
    """A declined attempt: nothing is taken and the patient may try another card on the hosted page; the
    checkout keeps the processor's message (``last_payment_error``) for staff."""
    reference = str((intent.get("metadata") or {}).get("checkout") or "")
    error = intent.get("last_payment_error") or {}
    message = str(error.get("message") or "declined")[:300]
    if (intent.get("metadata") or {}).get("installment"):
        # The charging tick had the decline in the processor's answer and recorded it with its retry.
        return f"installment declined: {message}", None
    updated = Checkout.objects.filter(processor=processor, reference=reference).update(
        failed_attempts=F("failed_attempts") + 1, last_failure=message
    )
    return (f"declined: {message}" if updated else "not a checkout of ours"), None


# What recording a payment reads of its checkout, link, bill and organization: the webhook's hot path.
_CHECKOUT_FIELDS = (
    "id", "reference", "organization", "link", "bill", "organization__id", "organization__name",
    "link__id", "link__expires_at", "bill__id", "bill__organization_id", "bill__guarantor_id", "bill__source",
    "bill__state", "bill__amount_due", "bill__ended_at", "bill__next_dunning_date",
)  # fmt: skip


def payment_record(
    *, processor: str, checkout_reference: str, payment_reference: str, amount_cents: int, moment: datetime,
    mode: str = CheckoutMode.PAYMENT,
) -> Outcome:  # fmt: skip
    """Record the payment ``payment_reference`` of the checkout ``checkout_reference`` once (H2): it reduces the
    campaign's amount and a campaign paid in full ends ``paid`` (P3, D11). A confirmation for a link that has
    expired or a campaign that ended meanwhile is recorded all the same (the money was taken) and flagged for
    staff; so is one for more than the campaign still owed. The guarantor gets an email receipt (H4).

    ``mode`` setup: an installment of a plan (H5), charged off-session on the plan's card-save checkout; its
    campaign was closed by the plan itself and its link may have expired since the sign-up, which is no reason
    for review."""
    if not payment_reference:
        return "not a checkout of ours", None
    # The checkout with its bill locked, in one query (the bill: FOR NO KEY UPDATE, the lock order's step 2).
    found = list(
        Checkout.objects.select_related("link", "organization", "bill")
        .only(*_CHECKOUT_FIELDS)
        .select_for_update(no_key=True, of=("bill",))
        .filter(processor=processor, reference=checkout_reference, mode=mode)[:1]
    )
    if not found:
        return "not a checkout of ours", None
    checkout = found[0]
    if amount_cents <= 0:
        return "nothing was paid", None
    amount = from_cents(amount_cents)
    bill = checkout.bill
    ended = mode == CheckoutMode.PAYMENT and (
        bill.state not in BILL_OWING_STATES or checkout.link.expires_at <= moment
    )
    review = ReviewReason.LINK_ENDED if ended else (ReviewReason.OVERPAID if amount > bill.amount_due else "")
    payment = Payment(
        organization_id=bill.organization_id, bill=bill, link=checkout.link, checkout=checkout,
        kind=PaymentKind.PAYMENT, amount=amount, status=PaymentStatus.SUCCEEDED, processor=processor,
        processor_reference=payment_reference, needs_review=review, created_at=moment,
    )  # fmt: skip
    before_due, before_state = bill.amount_due, bill.state
    due = before_due - amount
    ends = bill.state in BILL_OWING_STATES and due <= 0
    changes: dict[str, Any] = {
        "amount": str(amount),
        "processor": processor,
        "amount_due": [str(before_due), str(due)],
    }
    if ends:
        changes["state"] = [before_state, BillState.PAID]
    if review:
        changes["needs_review"] = review
    if not _payment_apply(payment=payment, due=due, ends=ends, moment=moment, changes=changes):
        return ALREADY_RECORDED, None
    bill.amount_due = due
    if ends:
        bill.state, bill.ended_at = BillState.PAID, moment
    checkout.status, checkout.completed_at = CheckoutStatus.COMPLETE, moment
    if review:
        logger.warning("payment %s needs review: %s", payment.pk, review)
    receipt_email_later(payment=payment)
    return ("recorded, needs review" if review else "recorded"), payment


_PAYMENTS = connection.ops.quote_name(Payment._meta.db_table)
_PAYMENT_COLUMNS = (
    "organization_id", "bill_id", "link_id", "checkout_id", "kind", "refund_of_id", "amount", "status",
    "processor", "processor_reference", "card_last4", "created_at", "needs_review",
)  # fmt: skip


_PAYMENT_INSERT = (
    f"INSERT INTO {_PAYMENTS} ({', '.join(_PAYMENT_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_PAYMENT_COLUMNS))}) "  # noqa: S608
    "ON CONFLICT (processor, processor_reference) WHERE NOT (processor_reference = '') DO NOTHING RETURNING id"
)


def _payment_values(payment: Payment) -> list[Any]:
    fields = {field.attname: field for field in Payment._meta.concrete_fields}
    return [
        fields[column].get_db_prep_save(getattr(payment, column), connection) for column in _PAYMENT_COLUMNS
    ]


_BILLS = connection.ops.quote_name(Bill._meta.db_table)
_CHECKOUTS = connection.ops.quote_name(Checkout._meta.db_table)
_AUDIT = connection.ops.quote_name(AuditEvent._meta.db_table)


def _payment_apply(
    *, payment: Payment, due: Decimal, ends: bool, moment: datetime, changes: dict[str, Any]
) -> bool:
    """Record ``payment`` of its checkout (its bill locked by the caller) in one statement: the row unless its
    processor id is recorded already (the partial unique index decides), and only then the bill's new amount
    ``due`` (``ends``: the campaign is paid), the checkout complete and the audit row (``changes``), each
    conditioned on the insert. Its pk is set on ``payment``; False for a payment recorded already. The statement
    is the four writes the ORM made one round trip each (docs/performance.md)."""
    if connection.vendor != "postgresql":
        return _payment_apply_portable(payment=payment, due=due, ends=ends, moment=moment, changes=changes)
    bill_set = "amount_due = %s, state = %s, ended_at = %s" if ends else "amount_due = %s"
    bill_values: list[Any] = [due, BillState.PAID, moment] if ends else [due]
    audit_changes = AuditEvent._meta.get_field("changes").get_db_prep_save(changes, connection)
    statement = (
        f"WITH paid AS ({_PAYMENT_INSERT}), "  # noqa: S608
        f"billed AS (UPDATE {_BILLS} SET {bill_set} WHERE id = %s AND EXISTS (SELECT 1 FROM paid) RETURNING 1), "
        f"completed AS (UPDATE {_CHECKOUTS} SET status = %s, completed_at = %s "
        "WHERE id = %s AND EXISTS (SELECT 1 FROM paid) RETURNING 1), "
        f"audited AS (INSERT INTO {_AUDIT} (organization_id, actor_id, actor_label, action, object_type, object_id, "
        "changes, created_at) SELECT %s, NULL, %s, 'payment.record', %s, paid.id::text, %s, %s FROM paid RETURNING 1) "
        "SELECT id FROM paid"
    )
    values = [
        *_payment_values(payment), *bill_values, payment.bill_id, CheckoutStatus.COMPLETE, moment,
        payment.checkout_id, payment.organization_id, payment.processor, Payment._meta.label, audit_changes,
        timezone.now(),
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(statement, values)
        row = cursor.fetchone()
    if row is None:
        return False
    payment.pk = int(row[0])
    payment._state.adding = False
    return True


def _payment_apply_portable(
    *, payment: Payment, due: Decimal, ends: bool, moment: datetime, changes: dict[str, Any]
) -> bool:
    """``_payment_apply``'s four writes one statement each, for SQLite (the embedded default), which has no
    data-modifying WITH; the insert still decides, and the caller's transaction holds them together."""
    if _payment_insert(payment) is None:
        return False
    ended = {"state": BillState.PAID, "ended_at": moment} if ends else {}
    Bill.objects.filter(pk=payment.bill_id).update(amount_due=due, **ended)
    if payment.checkout_id is not None:  # always, for a checkout's payment; the PostgreSQL path's WHERE alike
        Checkout.objects.filter(pk=payment.checkout_id).update(
            status=CheckoutStatus.COMPLETE, completed_at=moment
        )
    audit_record(
        organization=payment.organization, actor_label=payment.processor, action="payment.record", obj=payment,
        changes=changes,
    )  # fmt: skip
    return True


def _payment_insert(payment: Payment) -> Payment | None:
    """Insert ``payment`` unless its processor id is recorded already (the partial unique index decides, in the
    same statement as the insert); the saved row, or None for a duplicate."""
    statement, values = _PAYMENT_INSERT, _payment_values(payment)
    with connection.cursor() as cursor:
        cursor.execute(statement, values)
        row = cursor.fetchone()
    if row is None:
        return None
    payment.pk = int(row[0])
    payment._state.adding = False
    return payment


# What holds money going back on a payment: succeeded rows, and refunds still pending (they will return it
# unless they fail). A failed refund holds nothing.
_HOLDING = (PaymentStatus.SUCCEEDED, PaymentStatus.PENDING)


def returned_on(payment: Payment) -> Decimal:
    """What has gone back on ``payment`` so far (refunds, pending ones included, and disputes, less what came
    back: a dispute won, a refund that failed after it succeeded), as a positive amount."""
    total = Payment.objects.filter(refund_of=payment, status__in=_HOLDING).aggregate(total=Sum("amount"))[
        "total"
    ]
    return -(total or Decimal("0.00"))


def _payment_of(processor: str, payment_reference: str) -> Payment | None:
    return (
        Payment.objects.select_related("organization")
        .filter(processor=processor, processor_reference=payment_reference, kind=PaymentKind.PAYMENT)
        .first()
    )


def _charge_refunded(processor: str, charge: dict[str, Any], moment: datetime) -> Outcome:
    """https://docs.stripe.com/api/charges/object: ``amount_refunded`` is the running total of the charge's
    refunds, so a refund made outside the product (the processor's dashboard) is what it says beyond the
    refunds recorded here; a refund made through ``payment_refund`` is recorded already and changes nothing."""
    payment = _payment_of(processor, str(charge.get("payment_intent") or ""))
    if payment is None:
        return "not a payment of ours", None
    total_cents = int(charge.get("amount_refunded") or 0)
    bill = Bill.objects.select_for_update(no_key=True).get(pk=payment.bill_id)
    # The refunds the running total covers: pending and succeeded ones, less those that failed after they had
    # succeeded (the charge's total drops again then, and their reversal row is here).
    refunds = (
        Payment.objects.filter(refund_of=payment)
        .filter(
            Q(kind=PaymentKind.REFUND, status__in=_HOLDING)
            | Q(kind=PaymentKind.REVERSAL, processor_reference__endswith=REFUND_FAILED_SUFFIX)
        )
        .aggregate(t=Sum("amount"))["t"]
    )
    missing = from_cents(total_cents) + (refunds or Decimal("0.00"))
    left = payment.amount - returned_on(payment)
    amount = min(missing, left)
    if amount <= 0:
        return "refunds already recorded", None
    refund = return_record(
        payment=payment, bill=bill, kind=PaymentKind.REFUND, amount=amount, moment=moment,
        processor_reference=f"{charge.get('id')}/refunded/{total_cents}", actor_label=processor,
    )  # fmt: skip
    return "refund recorded", refund


REFUND_FAILED_SUFFIX = "/failed"
DISPUTE_WON_SUFFIX = "/won"
# https://docs.stripe.com/api/refunds/object: status is pending, requires_action, succeeded, failed or canceled.
_REFUND_STATUS = {
    "succeeded": PaymentStatus.SUCCEEDED, "pending": PaymentStatus.PENDING,
    "requires_action": PaymentStatus.PENDING, "failed": PaymentStatus.FAILED, "canceled": PaymentStatus.FAILED,
}  # fmt: skip


def refund_status(processor_status: str) -> str:
    """Our status of a refund the processor reports as ``processor_status`` (unknown values: pending)."""
    return _REFUND_STATUS.get(processor_status, PaymentStatus.PENDING)


def _refund_changed(processor: str, refund: dict[str, Any], moment: datetime) -> Outcome:
    """https://docs.stripe.com/api/refunds/object, in ``refund.created``, ``refund.updated`` and ``refund.failed``
    (every refund since API version 2024-10-28.acacia, https://docs.stripe.com/changelog/acacia/2024-10-28/
    refund-webhook-update) and the older ``charge.refund.updated``: the refund's own id, amount and status.

    A refund recorded here (by ``payment_refund``, or from ``charge.refunded`` before its id was known: that row is
    given the id) takes the new status; one made in the processor's dashboard is recorded with its status."""
    payment = _payment_of(processor, str(refund.get("payment_intent") or ""))
    reference = str(refund.get("id") or "")
    if payment is None or not reference:
        return "not a payment of ours", None
    status = refund_status(str(refund.get("status") or ""))
    amount = from_cents(int(refund.get("amount") or 0))
    bill = Bill.objects.select_for_update(no_key=True).get(pk=payment.bill_id)
    row = (
        Payment.objects.select_for_update().filter(processor=processor, processor_reference=reference).first()
    )
    if row is None:
        row = (
            Payment.objects.select_for_update()
            .filter(refund_of=payment, kind=PaymentKind.REFUND, amount=-amount,
                    processor_reference__contains="/refunded/")
            .order_by("pk")
            .first()
        )  # fmt: skip
        if row is not None:
            Payment.objects.filter(pk=row.pk).update(processor_reference=reference)
            row.processor_reference = reference
    if row is None:
        if status == PaymentStatus.FAILED:
            return f"a refund that {refund.get('status')} before it was recorded: nothing to do", None
        amount = min(amount, payment.amount - returned_on(payment))
        if amount <= 0:
            return "refunds already recorded", None
        row = return_record(
            payment=payment, bill=bill, kind=PaymentKind.REFUND, amount=amount, moment=moment,
            processor_reference=reference, actor_label=processor, status=status,
        )  # fmt: skip
        return f"refund recorded ({status})", row
    return refund_status_apply(row=row, payment=payment, bill=bill, status=status, moment=moment,
                               actor_label=processor)  # fmt: skip


def refund_status_apply(
    *, row: Payment, payment: Payment, bill: Bill, status: str, moment: datetime, actor_label: str
) -> Outcome:
    """Move the refund ``row`` of ``payment`` (``bill`` locked by the caller) to ``status``: a pending refund that
    succeeds reopens what it returns and takes the date it succeeded (exported and posted from then); one that
    fails reopens nothing and holds nothing any more; a refund that fails after it had succeeded keeps its row
    (it was exported or posted) and gets a reversal row that takes the amount off again."""
    if row.status == status:
        return "already recorded", None
    if row.status == PaymentStatus.PENDING and status == PaymentStatus.SUCCEEDED:
        Payment.objects.filter(pk=row.pk).update(status=status, created_at=moment)
        row.status, row.created_at = status, moment
        reopened = bill_reopen(bill=bill, amount=-row.amount)
        audit_record(
            organization=payment.organization, actor_label=actor_label, action="payment.refund_succeeded", obj=row,
            changes={"status": [PaymentStatus.PENDING, status], "bill": reopened.bill_id,
                     "amount_due": [str(reopened.amount_due + row.amount), str(reopened.amount_due)]},
        )  # fmt: skip
        return "refund succeeded", row
    if row.status == PaymentStatus.PENDING and status == PaymentStatus.FAILED:
        Payment.objects.filter(pk=row.pk).update(status=status)
        row.status = status
        audit_record(
            organization=payment.organization, actor_label=actor_label, action="payment.refund_failed", obj=row,
            changes={"status": [PaymentStatus.PENDING, status], "amount": str(row.amount)},
        )  # fmt: skip
        return "refund failed: nothing was reopened", row
    if row.status == PaymentStatus.SUCCEEDED and status == PaymentStatus.FAILED:
        reversal = reversal_record(
            payment=payment, bill=bill, returned=row, moment=moment, actor_label=actor_label,
            processor_reference=f"{row.processor_reference}{REFUND_FAILED_SUFFIX}",
        )  # fmt: skip
        return ("refund failed after it succeeded: reversed" if reversal else "already reversed"), reversal
    return f"no change ({row.status} stays; the processor says {status})", None


def reversal_record(
    *, payment: Payment, bill: Bill, returned: Payment, moment: datetime, processor_reference: str,
    actor_label: str,
) -> Payment | None:  # fmt: skip
    """The money of ``returned`` (a refund or dispute of ``payment``) came back: a positive row that exports and
    posts as a payment reversing the negative one, and the amount taken off what is owed again (``bill``
    locked by the caller). None when it was recorded already."""
    amount = -returned.amount
    row = _payment_insert(
        Payment(
            organization_id=payment.organization_id, bill=bill, link_id=payment.link_id, kind=PaymentKind.REVERSAL,
            refund_of=payment, amount=amount, status=PaymentStatus.SUCCEEDED, processor=payment.processor,
            processor_reference=processor_reference, created_at=moment,
        )
    )  # fmt: skip
    if row is None:
        return None
    settled = bill_settle(bill=bill, amount=amount, moment=moment)
    if settled.amount_due < 0:
        Payment.objects.filter(pk=row.pk).update(needs_review=ReviewReason.OVERPAID)
        row.needs_review = ReviewReason.OVERPAID
    audit_record(
        organization=payment.organization, actor_label=actor_label, action="payment.reversal", obj=row,
        changes={
            "payment": payment.pk, "reverses": returned.pk, "amount": str(amount), "bill": settled.bill_id,
            "amount_due": [str(settled.amount_due + amount), str(settled.amount_due)],
        },
    )  # fmt: skip
    return row


def _dispute_created(processor: str, dispute: dict[str, Any], moment: datetime) -> Outcome:
    """https://docs.stripe.com/api/disputes/object: the disputed ``amount`` is withdrawn from the practice's
    balance while the bank decides, so it is owed again (H3) and staff must answer the dispute."""
    payment = _payment_of(processor, str(dispute.get("payment_intent") or ""))
    if payment is None:
        return "not a payment of ours", None
    bill = Bill.objects.select_for_update(no_key=True).get(pk=payment.bill_id)
    reference = str(dispute.get("id") or "")
    if Payment.objects.filter(processor=processor, processor_reference=reference).exists():
        return "already recorded", None
    amount = min(from_cents(int(dispute.get("amount") or 0)), payment.amount - returned_on(payment))
    if amount <= 0:
        Payment.objects.filter(pk=payment.pk).update(needs_review=ReviewReason.DISPUTED, reviewed_at=None)
        return "dispute on a payment already returned: flagged", None
    row = return_record(
        payment=payment, bill=bill, kind=PaymentKind.DISPUTE, amount=amount, moment=moment,
        processor_reference=reference, actor_label=processor, review=ReviewReason.DISPUTED,
    )  # fmt: skip
    return "dispute recorded, needs review", row


def _dispute_closed(processor: str, dispute: dict[str, Any], moment: datetime) -> Outcome:
    """https://docs.stripe.com/api/disputes/object: a closed dispute's ``status`` is ``won`` (the funds are
    reinstated: the amount is ours again, so it is taken off the reopened balance and a reversing positive row
    posts back; the dispute needs no one any more), ``lost`` (the money stays with the card holder and stays
    owed), or ``warning_closed`` (an inquiry that never became a chargeback: like won)."""
    reference = str(dispute.get("id") or "")
    status = str(dispute.get("status") or "")
    row = (
        Payment.objects.select_related("refund_of__organization")
        .filter(processor=processor, processor_reference=reference, kind=PaymentKind.DISPUTE)
        .first()
    )
    if row is None or row.refund_of is None:
        return "no dispute of ours recorded", None
    payment = row.refund_of
    bill = Bill.objects.select_for_update(no_key=True).get(pk=row.bill_id)
    if status in ("won", "warning_closed"):
        reversal = reversal_record(
            payment=payment, bill=bill, returned=row, moment=moment, actor_label=processor,
            processor_reference=f"{reference}{DISPUTE_WON_SUFFIX}",
        )  # fmt: skip
        Payment.objects.filter(pk=row.pk, reviewed_at__isnull=True).update(reviewed_at=moment)
        return ("dispute won: the amount is paid again" if reversal else "already recorded"), reversal
    if status == "lost":
        audit_record(
            organization=payment.organization, actor_label=processor, action="payment.dispute_lost", obj=row,
            changes={"payment": payment.pk, "amount": str(row.amount)},
        )  # fmt: skip
        return "dispute lost: the amount stays owed", None
    return f"dispute closed {status or 'without a status'}: nothing changed", None


def return_record(
    *, payment: Payment, bill: Bill, kind: str, amount: Decimal, moment: datetime, processor_reference: str,
    actor: Any = None, actor_label: str = "", review: str = "", status: str = PaymentStatus.SUCCEEDED,
) -> Payment:  # fmt: skip
    """Money gone back on ``payment`` (a refund or a dispute; ``bill`` locked by the caller): a negative row that
    exports and posts as a negative payment, and the amount owed again (H3). A campaign that had ended paid is
    reopened; when the guarantor has started another request campaign since (one at a time, B2), that one
    carries the amount instead. A ``pending`` refund is recorded but reopens nothing until it succeeds
    (``refund_status_apply``)."""
    row = Payment.objects.create(
        organization_id=payment.organization_id, bill=bill, link=payment.link, kind=kind, refund_of=payment,
        amount=-amount, status=status, processor=payment.processor,
        processor_reference=processor_reference, needs_review=review,
    )  # fmt: skip
    changes: dict[str, Any] = {"payment": payment.pk, "amount": str(-amount)}
    if status == PaymentStatus.SUCCEEDED:
        reopened = bill_reopen(bill=bill, amount=amount)
        changes |= {
            "bill": reopened.bill_id, "amount_due": [str(reopened.amount_due - amount), str(reopened.amount_due)]
        }  # fmt: skip
    else:
        changes["status"] = status
    audit_record(
        organization=payment.organization, actor=actor, actor_label=actor_label, action=f"payment.{kind}",
        obj=row, changes=changes,
    )  # fmt: skip
    return row


def bill_reopen(*, bill: Bill, amount: Decimal) -> Bill:
    """``amount`` is owed again on ``bill`` (locked by the caller). Returns the bill that now carries it."""
    if bill.state == BillState.PAID:
        other = None
        if bill.source == BillSource.REQUEST:
            other = (
                Bill.objects.select_for_update(no_key=True)
                .filter(guarantor_id=bill.guarantor_id, source=BillSource.REQUEST, state=BillState.ACTIVE)
                .exclude(pk=bill.pk)
                .first()
            )
        if other is not None:
            other.amount_due += amount
            other.save(update_fields=["amount_due"])
            return other
        bill.amount_due += amount
        if bill.amount_due > 0:
            # The engine computes the next step again (D13: NULL is "to be computed").
            bill.state, bill.ended_at, bill.next_dunning_date = BillState.ACTIVE, None, None
        bill.save(update_fields=["amount_due", "state", "ended_at", "next_dunning_date"])
        return bill
    bill.amount_due += amount
    bill.save(update_fields=["amount_due"])
    return bill


def bill_settle(*, bill: Bill, amount: Decimal, moment: datetime) -> Bill:
    """``amount`` is paid again on ``bill`` (locked by the caller; a reversal, the inverse of ``bill_reopen``):
    taken off the bill while it owes, and a campaign paid in full ends ``paid``; when it has ended since and the
    guarantor has another request campaign, that one is reduced instead. Returns the bill that took it."""
    target = bill
    if bill.state not in BILL_OWING_STATES and bill.source == BillSource.REQUEST:
        other = (
            Bill.objects.select_for_update(no_key=True)
            .filter(guarantor_id=bill.guarantor_id, source=BillSource.REQUEST, state=BillState.ACTIVE)
            .exclude(pk=bill.pk)
            .first()
        )
        target = other or bill
    target.amount_due -= amount
    fields = ["amount_due"]
    if target.state in BILL_OWING_STATES and target.amount_due <= 0:
        target.state, target.ended_at = BillState.PAID, moment
        fields += ["state", "ended_at"]
    target.save(update_fields=fields)
    return target


HANDLERS: dict[str, Callable[[str, dict[str, Any], datetime], Outcome]] = {
    "checkout.session.completed": _session_completed,
    "payment_intent.succeeded": _intent_succeeded,
    "setup_intent.succeeded": _setup_succeeded,
    "payment_intent.payment_failed": _intent_failed,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
    "charge.dispute.closed": _dispute_closed,
    "refund.created": _refund_changed,
    "refund.updated": _refund_changed,
    "refund.failed": _refund_changed,
    "charge.refund.updated": _refund_changed,
}
