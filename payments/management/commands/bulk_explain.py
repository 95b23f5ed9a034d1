from __future__ import annotations

from typing import Any

from payments.eligibility import explain_guarantor
from payments.management.commands._args import patient
from practices.management.commands._base import ContractCommand


class Command(ContractCommand):
    help = (
        "Explain why a guarantor is or is not on the bulk payment request list (R12): every rule with the "
        "value seen, the threshold and pass/fail. Exit 2 for an unknown guarantor."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--guarantor", required=True, help="the guarantor's PMS id")
        parser.add_argument("--date", help="YYYY-MM-DD (default: today in the organization's time zone)")
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"])
        on = self.day(options["date"], organization)
        guarantor = patient(organization, options["guarantor"])
        document = explain_guarantor(organization=organization, guarantor=guarantor, on=on)
        if options["json"]:
            self.emit_json(document)
            return
        verdict = "eligible" if document["eligible"] else "not eligible"
        self.stdout.write(f"{document['guarantor_id']} is {verdict} on {on.isoformat()}")
        for rule in document["rules"]:
            self.stdout.write(f"  {rule['rule']:<4} {'pass' if rule['passed'] else 'FAIL'}  {rule['detail']}")
