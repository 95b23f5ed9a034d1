"""Receipts (H4): what a receipt says, on the page and in its PDF (reportlab), and that it says nothing clinical."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pypdf import PdfReader

from payments.receipts import receipt_for, receipt_pdf
from payments.refunds import payment_refund
from practices.models import Bill, BillSource, Organization
from tests.factories import GuarantorFactory, OrganizationFactory
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
