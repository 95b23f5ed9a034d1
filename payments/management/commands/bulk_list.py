from __future__ import annotations

from typing import Any

from payments.eligibility import bulk_list_rows
from practices.management.commands._base import ContractCommand


class Command(ContractCommand):
    help = (
        "List the guarantors eligible for a bulk payment request (R1-R11) on a date (default: the "
        "organization's today), sorted by guarantor id."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--date", help="YYYY-MM-DD (default: today in the organization's time zone)")
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"])
        on = self.day(options["date"], organization)
        rows = bulk_list_rows(organization=organization, on=on)
        if options["json"]:
            self.emit_json(rows)
            return
        for row in rows:
            self.stdout.write(
                f"{row['guarantor_id']:<14} {row['name'][:30]:<30} {row['patient_portion']:>12} "
                f"{row['aging_category']:<8} {row['last_visit_date'] or '-'}"
            )
        self.stdout.write(f"{len(rows)} eligible guarantor(s) on {on.isoformat()}")
