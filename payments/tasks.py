"""Thin, named Celery tasks of the payments app; each takes primary keys and is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from payments.receipts import receipt_email_send


@shared_task(name="payments.receipt_email", acks_late=True, ignore_result=True)
def receipt_email(payment_id: int) -> bool:
    """H4: the email receipt of a payment just recorded (queued on the confirmation's commit)."""
    return receipt_email_send(payment_id=payment_id) is not None


@shared_task(name="payments.charge_due_installments", acks_late=True, ignore_result=True)
def charge_due_installments() -> dict[str, int]:
    """H5: charge the plan installments whose time has come (beat, every 15 minutes); each is claimed by one
    worker and charged once with its idempotency key, so a second run or a redelivery charges nothing twice."""
    from payments.plans import installments_charge_due

    return installments_charge_due().as_json()
