"""Receipts (H4): what a receipt says, on the page, in its PDF (reportlab) and in the email the outbox sends, and
that it says nothing clinical."""

from __future__ import annotations

import io
from datetime import date, time
from decimal import Decimal
from typing import Any

import pytest
from pypdf import PdfReader

from notifications.models import Channel, Kind, Message, NotificationSettings, State
from notifications.outbox import message_send
from notifications.selectors import undeliverable_messages
from payments.receipts import receipt_for, receipt_pdf
from payments.refunds import payment_refund
from payments.tasks import receipt_email
from practices.models import Bill, BillSource, Organization, Patient
from tests.factories import GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.payments.paying import sandbox_payment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _sandbox(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.PAYMENT_PROCESSOR = "sandbox"
    monkeypatch.setattr("payments.processors.sandbox.events_deliver_later", lambda event_ids: None)


@pytest.fixture
def organization() -> Organization:
    return OrganizationFactory.create(slug="smile-dental", name="Smile Dental", phone="+18015550199")


def campaign(organization: Organization, amount: str) -> Bill:
    guarantor = GuarantorFactory.create(
        organization=organization,
        first_name="Marisol",
        last_name="Quintanilla",
        date_of_birth=date(1980, 4, 12),
    )
    return Bill.objects.create(
        organization=organization, guarantor=guarantor, bill_id="S-ROOT-CANAL-1", source=BillSource.STATEMENT,
        amount_due=Decimal(amount), created_at=guarantor.last_feed_at, effective_created_date=date(2026, 11, 20),
        last_seen_at=guarantor.last_feed_at,
    )  # fmt: skip


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def test_the_pdf_is_one_page_with_the_payment_and_nothing_clinical(organization: Organization) -> None:
    payment = sandbox_payment(campaign(organization, "150.00"), "150.00")

    data = receipt_pdf(payment=payment)

    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    text = pdf_text(data)
    for expected in ("Smile Dental", "(801) 555-0199", "Payment receipt", "Received from", "Marisol Quintanilla",
                     "$150.00", payment.processor_reference, "Remaining balance", "$0.00",
                     "Your balance is paid in full."):  # fmt: skip
        assert expected in text, expected
    # The statement's id may name the care (a PMS's own ids do); a receipt carries no clinical data (H4).
    assert "ROOT" not in text and "CANAL" not in text
    assert "1980" not in text


def test_a_refund_since_shows_on_the_receipt(organization: Organization) -> None:
    payment = sandbox_payment(campaign(organization, "150.00"), "100.00")
    payment_refund(payment=payment, amount=Decimal("40.00"), actor_label="test")
    payment.refresh_from_db()

    receipt = receipt_for(payment=payment)

    assert (receipt.amount_paid, receipt.refunded, receipt.remaining, receipt.paid_in_full) == (
        "$100.00", "$40.00", "$90.00", False,
    )  # fmt: skip
    assert "Refunded since" in pdf_text(receipt_pdf(payment=payment))


# H4: the email receipt, through the outbox


def test_recording_a_payment_queues_its_receipt_for_a_worker_once_committed(
    organization: Organization, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[int] = []
    monkeypatch.setattr("payments.tasks.receipt_email.delay", queued.append)
    bill = campaign(organization, "150.00")

    with django_capture_on_commit_callbacks(execute=True):
        payment = sandbox_payment(bill, "50.00")

    assert queued == [payment.pk]
    assert not Message.objects.filter(kind=Kind.RECEIPT).exists()  # the worker writes it


def test_the_receipt_task_writes_an_email_through_the_outbox_when_the_guarantor_has_an_email(
    organization: Organization,
) -> None:
    bill = campaign(organization, "150.00")
    Patient.objects.filter(pk=bill.guarantor_id).update(email="marisol@example.com")
    payment = sandbox_payment(bill, "50.00")

    assert receipt_email(payment.pk) is True
    assert receipt_email(payment.pk) is True  # redelivered: the same receipt, not a second one

    message = Message.objects.get(kind=Kind.RECEIPT)
    assert (message.channel, message.destination, message.patient_id, message.bill_id) == (
        Channel.EMAIL, "marisol@example.com", bill.guarantor_id, None,
    )  # fmt: skip
    assert message.state in (State.PENDING, State.SCHEDULED)
    assert message.subject == "Your payment receipt from Smile Dental"
    for expected in ("Amount paid: $50.00", payment.processor_reference, "Remaining balance: $100.00",
                     "(801) 555-0199"):  # fmt: skip
        assert expected in message.body, expected
    assert "ROOT" not in message.body and "1980" not in message.body


def test_the_receipt_email_goes_through_the_email_channel_even_when_the_payment_ended_the_campaign(
    organization: Organization, settings: Any, mailoutbox: list[Any]
) -> None:
    """The pre-send re-check cancels a paid campaign's messages (N1); a receipt is about the payment, not the
    campaign, and goes."""
    settings.EMAIL_ENABLED = True
    bill = campaign(organization, "150.00")
    Patient.objects.filter(pk=bill.guarantor_id).update(email="marisol@example.com", timezone="UTC")
    NotificationSettings.objects.update_or_create(
        organization=organization, defaults={"quiet_start": time(0), "quiet_end": time(0)}
    )
    receipt_email(sandbox_payment(bill, "150.00").pk)
    message = Message.objects.get(kind=Kind.RECEIPT)

    assert message_send(message_id=message.pk) == State.SENT

    [email] = mailoutbox
    assert email.to == ["marisol@example.com"]
    assert "Your balance is paid in full." in email.body


def test_no_email_receipt_without_an_email_and_none_for_a_refund(organization: Organization) -> None:
    bill = campaign(organization, "150.00")
    payment = sandbox_payment(bill, "50.00")
    assert receipt_email(payment.pk) is False
    Patient.objects.filter(pk=bill.guarantor_id).update(email="marisol@example.com")
    refund = payment_refund(payment=payment, amount=Decimal("10.00"), actor_label="test")

    assert receipt_email(refund.pk) is False
    assert not Message.objects.filter(kind=Kind.RECEIPT).exists()


def test_a_bounced_receipt_is_not_on_the_undeliverable_list(organization: Organization) -> None:
    """U1 lists requests and dunning messages for the front desk to resend; a receipt is neither."""
    bill = campaign(organization, "150.00")
    Patient.objects.filter(pk=bill.guarantor_id).update(email="marisol@example.com")
    receipt_email(sandbox_payment(bill, "50.00").pk)
    Message.objects.filter(kind=Kind.RECEIPT).update(state=State.UNDELIVERED, reason="bounced")
    staff = MembershipFactory.create(organization=organization).user

    assert not undeliverable_messages(user=staff).filter(kind=Kind.RECEIPT).exists()
