from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from payments.models import PaymentStatus
from payments.refunds import RefundRefused, RefundUnavailable, payment_refund, refund_left, refundable_payment
from practices.management.commands._base import ContractCommand


class Command(ContractCommand):
    help = (
        "Refund a payment, whole or part, through the processor that took it (§10, H3): --amount is dollars and "
        "cents (default: all that is left). The refund is recorded as a negative payment (export_payments, and "
        "posted back by sync_pms) and the amount is owed again on the campaign; a refund the processor reports "
        "as pending is recorded with status pending and does that once its event says it succeeded. Exits 2 "
        "for an unknown organization or payment, or an amount over what is left; 1 when the processor cannot "
        "be reached (nothing was refunded)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True, metavar="SLUG")
        parser.add_argument("--payment", required=True, metavar="ID")
        parser.add_argument("--amount", metavar="A", help="dollars and cents, e.g. 25.00 (default: the rest)")
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"])
        try:
            payment = refundable_payment(organization=organization, payment_id=options["payment"])
            refund = payment_refund(payment=payment, amount=options["amount"], actor_label="refund command")
        except RefundRefused as exc:
            raise CommandError(str(exc), returncode=2) from None
        except RefundUnavailable as exc:
            raise CommandError(str(exc), returncode=1) from None
        left = refund_left(payment=payment)
        refund.bill.refresh_from_db(fields=["amount_due", "state"])
        document = {
            "refund_id": refund.pk, "payment_id": payment.pk, "amount": str(refund.amount),
            "status": refund.status, "processor": refund.processor, "processor_reference": refund.processor_reference,
            "left_to_refund": str(left), "bill_id": refund.bill.bill_id, "amount_due": str(refund.bill.amount_due),
            "bill_state": refund.bill.state,
        }  # fmt: skip
        if options["json"]:
            self.emit_json(document)
            return
        done = "refunded" if refund.status == PaymentStatus.SUCCEEDED else "refund pending at the processor:"
        self.stderr.write(
            f"{done} {-refund.amount} of payment {payment.pk} ({refund.processor_reference}); "
            f"{left} left to refund; {refund.bill.bill_id} owes {refund.bill.amount_due}"
        )
