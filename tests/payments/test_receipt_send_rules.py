"""Receipts are transactional (H4 with K1, K2): the email receipt of a payment the patient just made goes at once,
whatever the hour or the contact count, and is not counted as a contact; an email opt-out still stops it.

Payments come from the sandbox processor's signed confirmation (tests/payments/paying.py), the receipt is written
by its task and sent by the outbox tick (``messages_send_due``) to anymail's test backend, whose outbox is what
is asserted. The law behind the decision (docs/decisions.md, "Receipts are transactional"): CAN-SPAM exempts a
"transactional or relationship message" that confirms a transaction the recipient agreed to, 15 U.S.C.
7702(2)(B) and (17)(A)(i) (https://www.law.cornell.edu/uscode/text/15/7702); Florida's hours (Fla. Stat.
559.72(17)) govern communications to collect a debt, which a receipt is not."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail

from notifications.models import Channel, Kind, Message, NotificationSettings, OptOutSource, Reason, State
from notifications.optouts import opt_out_set
from notifications.outbox import message_create, messages_send_due
from payments.receipts import receipt_email_send
from practices.models import Bill, BillSource, Organization, Patient
from tests.factories import GuarantorFactory, OrganizationFactory
from tests.payments.paying import sandbox_payment

pytestmark = pytest.mark.django_db

DENVER = ZoneInfo("America/Denver")
TEN_PM = datetime(2026, 3, 10, 22, 0, tzinfo=DENVER)  # a Tuesday, inside the default quiet hours 21:00-08:00


@pytest.fixture(autouse=True)
def _sandbox_and_email(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.PAYMENT_PROCESSOR = "sandbox"
    settings.EMAIL_BACKEND, settings.EMAIL_ENABLED = "anymail.backends.test.EmailBackend", True
    monkeypatch.setattr("payments.processors.sandbox.events_deliver_later", lambda event_ids: None)
    monkeypatch.setattr(
        "payments.tasks.receipt_email.delay", lambda payment_id: None
    )  # written by hand below


@pytest.fixture
def organization() -> Organization:
    organization = OrganizationFactory.create(
        slug="smile-dental", name="Smile Dental", timezone="America/Denver"
    )
    NotificationSettings.objects.update_or_create(
        organization=organization,
        defaults={"quiet_start": time(21), "quiet_end": time(8), "frequency_cap": "2/7d"},
    )
    return organization


@pytest.fixture
def guarantor(organization: Organization) -> Patient:
    return GuarantorFactory.create(
        organization=organization, email="marisol@example.com", mobile_phone="", address_state="UT",
        address_zip="84101", timezone="America/Denver", timezone_source="zip",
    )  # fmt: skip


def campaign(guarantor: Patient, amount: str = "150.00") -> Bill:
    return Bill.objects.create(
        organization=guarantor.organization, guarantor=guarantor, bill_id=f"R-{guarantor.external_id}",
        source=BillSource.REQUEST, amount_due=Decimal(amount), created_at=TEN_PM,
        effective_created_date=TEN_PM.date(), last_seen_at=TEN_PM,
    )  # fmt: skip


def reminder(guarantor: Patient, at: datetime) -> Message:
    """A dunning email created and ticked at ``at``; the message as it ends."""
    with time_machine.travel(at, tick=False):
        message = message_create(
            Message(organization=guarantor.organization, patient=guarantor, channel=Channel.EMAIL,
                    kind=Kind.REMINDER, subject="Your balance", body="Your balance is due.",
                    destination=guarantor.email),
            now=at,
        )  # fmt: skip
        messages_send_due(now=at)
    message.refresh_from_db()
    return message


def receipt_at(guarantor: Patient, at: datetime, amount: str = "50.00") -> Message:
    """The patient pays at ``at``; the worker writes the receipt and the tick runs then."""
    with time_machine.travel(at, tick=False):
        payment = sandbox_payment(campaign(guarantor), amount)
        message = receipt_email_send(payment_id=payment.pk, now=at)
        assert message is not None
        messages_send_due(now=at)
    message.refresh_from_db()
    return message


def receipts_sent() -> list[Any]:
    return [m for m in mail.outbox if m.subject == "Your payment receipt from Smile Dental"]


def test_a_payment_at_22_00_local_gets_its_receipt_at_once(guarantor: Patient) -> None:
    held = reminder(guarantor, TEN_PM)  # the same hour holds a dunning email
    assert (held.state, held.reason) == (State.SCHEDULED, Reason.QUIET_HOURS)

    receipt = receipt_at(guarantor, TEN_PM)

    assert (receipt.state, receipt.reason) == (State.SENT, "")
    [email] = receipts_sent()
    assert email.to == ["marisol@example.com"]
    assert "Amount paid: $50.00" in email.body


def test_the_frequency_cap_neither_holds_a_receipt_nor_counts_it(guarantor: Patient) -> None:
    monday = datetime(2026, 3, 9, 10, 0, tzinfo=DENVER)
    assert reminder(guarantor, monday).state == State.SENT
    assert (
        reminder(guarantor, monday + timedelta(hours=1)).state == State.SENT
    )  # the cap (2 in 7 days) is full

    receipt = receipt_at(guarantor, monday + timedelta(hours=2))
    assert receipt.state == State.SENT and len(receipts_sent()) == 1

    # The cap still holds the next dunning email, and to the moment the first reminder leaves the window: the
    # receipt, sent after both, is not among the contacts counted.
    third = reminder(guarantor, monday + timedelta(hours=3))
    assert (third.state, third.reason) == (State.SCHEDULED, Reason.FREQUENCY_CAP)
    assert third.scheduled_for == monday + timedelta(days=7)


def test_an_email_opt_out_still_stops_the_receipt(organization: Organization, guarantor: Patient) -> None:
    opt_out_set(organization=organization, channel=Channel.EMAIL, address=guarantor.email, active=True,
                source=OptOutSource.EMAIL_UNSUBSCRIBE)  # fmt: skip

    receipt = receipt_at(guarantor, datetime(2026, 3, 9, 10, 0, tzinfo=DENVER))

    assert (receipt.state, receipt.reason) == (State.CANCELLED, Reason.OPTED_OUT)
    assert receipts_sent() == []
