"""Small hand-made worlds for the Results tests: an organization in America/Denver, campaigns, messages sent at
given moments, link opens and payments (rows written directly, at the times the test names)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from itertools import count
from typing import Any, cast
from zoneinfo import ZoneInfo

from notifications.models import Message, State
from payments.models import Payment, PaymentKind, PaymentStatus
from payments.results.services import link_opened
from practices.models import Bill, BillSource, Organization, Patient
from tests.factories import FEED_TIME, GuarantorFactory, OrganizationFactory

DENVER = ZoneInfo("America/Denver")
_numbers = count(1)


def denver(text: str) -> datetime:
    """``2026-11-10 23:30`` in the practice's zone."""
    return datetime.fromisoformat(text).replace(tzinfo=DENVER)


def organization(slug: str = "results-world") -> Organization:
    return cast(Organization, OrganizationFactory(slug=slug, timezone="America/Denver"))


def campaign(org: Organization, *, amount: str = "100.00", guarantor: Patient | None = None) -> Bill:
    n = next(_numbers)
    patient = guarantor or cast(
        Patient, GuarantorFactory(organization=org, external_id=f"G{n:04d}", date_of_birth="1980-04-12")
    )
    return Bill.objects.create(
        organization=org, guarantor=patient, bill_id=f"R-{n}", source=BillSource.REQUEST,
        amount_due=Decimal(amount), created_at=FEED_TIME, effective_created_date=FEED_TIME.date(),
        last_seen_at=FEED_TIME,
    )  # fmt: skip


def message(
    bill: Bill, *, channel: str, sent: str | None = None, kind: str = "request", step_key: str = "request",
    state: str = State.SENT, delivered: str | None = None, reason: str = "", updated: str | None = None,
    amount: str | None = None,
) -> Message:  # fmt: skip
    row = Message.objects.create(
        organization=bill.organization, patient=bill.guarantor, bill=bill, generation=bill.generation,
        step_key=step_key, kind=kind, channel=channel, body="Pay here", state=state, reason=reason,
        context={"amount_due_value": amount or str(bill.amount_due)},
        sent_at=denver(sent) if sent else None, delivered_at=denver(delivered) if delivered else None,
    )  # fmt: skip
    if updated or sent:
        Message.objects.filter(pk=row.pk).update(updated_at=denver(updated or sent or ""))
    return row


def opened(msg: Message, at: str) -> None:
    assert msg.bill is not None
    from notifications.paylinks import message_ref

    event = link_opened(bill=msg.bill, message_ref=message_ref(msg.pk), at=denver(at))
    assert event is not None


def pay(bill: Bill, amount: str, at: str, **fields: Any) -> Payment:
    payment = Payment.objects.create(
        organization=bill.organization, bill=bill, kind=PaymentKind.PAYMENT, amount=Decimal(amount),
        status=PaymentStatus.SUCCEEDED, processor="sandbox", processor_reference=f"pi_{next(_numbers)}", **fields,
    )  # fmt: skip
    Payment.objects.filter(pk=payment.pk).update(created_at=denver(at))
    payment.refresh_from_db()
    return payment


def refund(payment: Payment, amount: str, at: str) -> Payment:
    row = Payment.objects.create(
        organization=payment.organization, bill=payment.bill, kind=PaymentKind.REFUND, refund_of=payment,
        amount=-Decimal(amount), status=PaymentStatus.SUCCEEDED, processor="sandbox",
        processor_reference=f"re_{next(_numbers)}",
    )  # fmt: skip
    Payment.objects.filter(pk=row.pk).update(created_at=denver(at))
    return row
