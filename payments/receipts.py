"""Receipts (H4): an email through the outbox when the guarantor has an address, and a PDF on the page.

A receipt says who was paid, how much, when, the processor's reference and what is left to pay: no visit,
procedure or diagnosis, nothing clinical. The email goes through ``notifications.outbox.messages_create`` like
every message, but as a transactional message (``notifications.transactional``): it goes at once, whatever the
hour or the contact count, and is not counted as a contact; the re-check before sending (an email opt-out,
do-not-contact) still applies. Its subject is the payment, not a campaign, so it carries no bill and the pre-send
re-check does not cancel it when the payment ended the campaign.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.units import inch
from reportlab.pdfgen import canvas

from notifications.models import Channel, Kind, Message
from notifications.outbox import messages_create
from payments.models import Payment, PaymentKind, PaymentStatus
from practices.phones import phone_display


@dataclass(frozen=True)
class Receipt:
    practice: str
    practice_phone: str
    payer: str
    amount_paid: str
    refunded: str  # '' when nothing went back
    paid_on: str
    reference: str
    remaining: str
    paid_in_full: bool


def money(amount: Decimal) -> str:
    return f"-${-amount:,.2f}" if amount < 0 else f"${amount:,.2f}"


def receipt_for(*, payment: Payment) -> Receipt:
    """What a receipt of ``payment`` says (the page, the PDF and the email say the same)."""
    organization = payment.organization
    bill = payment.bill
    guarantor = bill.guarantor
    paid_at = timezone.localtime(payment.created_at, organization.tzinfo)
    returned = -sum(
        (r.amount for r in payment.returns.all() if r.status == PaymentStatus.SUCCEEDED), Decimal("0.00")
    )
    return Receipt(
        practice=organization.name,
        practice_phone=phone_display(organization.phone),
        payer=" ".join(part for part in (guarantor.first_name, guarantor.last_name) if part),
        amount_paid=money(payment.amount),
        refunded=money(returned) if returned else "",
        paid_on=f"{paid_at:%B} {paid_at.day}, {paid_at:%Y}",
        reference=payment.processor_reference,
        remaining=money(max(bill.amount_due, Decimal("0.00"))),
        paid_in_full=bill.amount_due <= 0,
    )


def receipt_text(receipt: Receipt) -> tuple[str, str]:
    """(subject, body) of the email receipt."""
    lines = [
        f"Thank you for your payment to {receipt.practice}.",
        "",
        f"Amount paid: {receipt.amount_paid}",
        f"Date: {receipt.paid_on}",
        f"Reference: {receipt.reference}",
        f"Remaining balance: {receipt.remaining}",
    ]
    if receipt.paid_in_full:
        lines += ["", "Your balance is paid in full."]
    contact = f"call us at {receipt.practice_phone}" if receipt.practice_phone else "contact the practice"
    lines += ["", f"Questions about your bill? Please {contact}.", "", receipt.practice]
    return f"Your payment receipt from {receipt.practice}", "\n".join(lines)


def receipt_email_later(*, payment: Payment) -> None:
    """Queue the email receipt of ``payment`` for a worker, once the caller's transaction commits: the webhook
    answers the processor without waiting for the outbox (SPEC §11, checkout confirmations)."""
    from payments.tasks import receipt_email

    payment_id = payment.pk
    transaction.on_commit(lambda: receipt_email.delay(payment_id))


def receipt_email_send(*, payment_id: int, now: datetime | None = None) -> Message | None:
    """Create the email receipt of payment ``payment_id`` in the outbox when the guarantor has an email; once:
    the payment's row is locked while its receipt is looked for, so a redelivered task finds the first one."""
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(no_key=True, of=("self",))
            .select_related("organization", "bill__guarantor")
            .filter(pk=payment_id, kind=PaymentKind.PAYMENT)
            .first()
        )
        if payment is None or not payment.bill.guarantor.email:
            return None
        guarantor = payment.bill.guarantor
        earlier = Message.objects.filter(
            patient=guarantor, channel=Channel.EMAIL, kind=Kind.RECEIPT, context__payment_id=payment.pk
        ).first()
        if earlier is not None:
            return earlier
        subject, body = receipt_text(receipt_for(payment=payment))
        message = Message(
            organization=payment.organization, patient=guarantor, kind=Kind.RECEIPT, channel=Channel.EMAIL,
            subject=subject, body=body, destination=guarantor.email, context={"payment_id": payment.pk},
        )  # fmt: skip
        return messages_create([message], now=now)[0]


def receipt_pdf(*, payment: Payment) -> bytes:
    """The receipt as a one-page PDF (reportlab), for the patient to keep."""
    receipt = receipt_for(payment=payment)
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=LETTER, pageCompression=1)
    pdf.setTitle(f"Payment receipt {receipt.reference}")
    pdf.setAuthor(receipt.practice)
    width, height = LETTER
    left, y = inch, height - inch
    pdf.setFont("Helvetica-Bold", 16)
    pdf.drawString(left, y, receipt.practice)
    if receipt.practice_phone:
        pdf.setFont("Helvetica", 10)
        pdf.drawString(left, y - 16, receipt.practice_phone)
    y -= 56
    pdf.setFont("Helvetica-Bold", 14)
    pdf.drawString(left, y, "Payment receipt")
    y -= 28
    rows = [
        ("Received from", receipt.payer),
        ("Amount paid", receipt.amount_paid),
        ("Date", receipt.paid_on),
        ("Reference", receipt.reference),
    ]
    if receipt.refunded:
        rows.append(("Refunded since", receipt.refunded))
    rows.append(("Remaining balance", receipt.remaining))
    for label, value in rows:
        pdf.setFont("Helvetica", 11)
        pdf.drawString(left, y, label)
        pdf.setFont("Helvetica-Bold", 11)
        pdf.drawRightString(width - inch, y, value)
        y -= 20
    if receipt.paid_in_full:
        y -= 10
        pdf.setFont("Helvetica", 11)
        pdf.drawString(left, y, "Your balance is paid in full.")
    pdf.setFont("Helvetica", 9)
    pdf.drawString(left, inch, "Keep this receipt for your records. Thank you.")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
