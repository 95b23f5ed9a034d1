from __future__ import annotations

from typing import Any

from payments.checkout import payments_export_rows
from practices.csv_export import csv_text
from practices.management.commands._base import ContractCommand, parse_date

COLUMNS = [
    "payment_id", "created_at", "guarantor_id", "bill_id", "kind", "amount", "refund_of", "status", "processor",
    "processor_reference", "card_last4",
]  # fmt: skip


class Command(ContractCommand):
    help = (
        "Export an organization's payments as CSV on stdout for posting into the PMS (P3, H3): succeeded payments "
        "only (declined attempts are left out), refunds and disputes as negative payments (kind refund or "
        "dispute, refund_of the payment they return), recorded on or after --since in the organization's time "
        "zone, oldest first. Exits 2 for an unknown organization or a bad date."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True, metavar="SLUG")
        parser.add_argument("--since", required=True, metavar="YYYY-MM-DD")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"])
        since = parse_date(options["since"], option="--since")
        rows = payments_export_rows(organization=organization, since=since)
        self.stdout.write(csv_text(COLUMNS, rows, lineterminator="\n"), ending="")
