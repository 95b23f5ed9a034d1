from __future__ import annotations

from typing import Any

from payments.plan_export import PLAN_COLUMNS, plans_export_rows
from practices.csv_export import csv_text
from practices.management.commands._base import ContractCommand, parse_date


class Command(ContractCommand):
    help = (
        "Export an organization's payment plans and pay-later dates (H5) as CSV on stdout for the PMS: one row per "
        "installment with its plan's terms, oldest plan first; plans still waiting for the card are left out. "
        "With --since, only the plans chosen, started, ended or with an installment paid on or after that day "
        "(the organization's time zone). A paid installment's money is in export_payments (payment_id). Exits 2 "
        "for an unknown organization or a bad date."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True, metavar="SLUG")
        parser.add_argument("--since", metavar="YYYY-MM-DD")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"])
        since = parse_date(options["since"], option="--since") if options["since"] else None
        rows = plans_export_rows(organization=organization, since=since)
        self.stdout.write(csv_text(PLAN_COLUMNS, rows, lineterminator="\n"), ending="")
