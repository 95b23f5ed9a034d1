from __future__ import annotations

from typing import Any

from dunning.after_final import after_final_rows
from practices.management.commands._base import ContractCommand


class Command(ContractCommand):
    help = (
        "The after-final worklist (SPEC §13.1, A1): guarantors whose bill is completed (past its final notice) "
        "and still owes, oldest final notice first, with the latest outcome staff recorded. A promise to pay "
        "still running on the date is left out until the day after the promised date."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--date", help="YYYY-MM-DD (default: today in the organization's time zone)")
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"])
        on = self.day(options["date"], organization)
        rows = after_final_rows(organization=organization, on=on)
        if options["json"]:
            self.emit_json(rows)
            return
        for row in rows:
            self.stdout.write(
                f"{row['guarantor_id']:<14} {row['bill_id']:<14} {row['amount_due']:>12} "
                f"{row['final_sent_at'] or 'not sent':<26} {row['outcome'] or '-'}"
            )
        self.stdout.write(f"{len(rows)} bill(s) on the after-final worklist on {on.isoformat()}")
