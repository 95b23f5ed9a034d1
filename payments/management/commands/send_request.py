from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from payments.campaigns import CampaignError, campaign_rows, send_request
from payments.management.commands._args import parse_at
from practices.management.commands._base import ContractCommand


class Command(ContractCommand):
    help = (
        "Send a single (one-off) payment request to one guarantor (B4) as of --at (default now; without an "
        "offset read in the organization's time zone). Exit 2 when the guarantor is unknown or not eligible "
        "(the failed rules are named on stderr) or already in a request campaign."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--guarantor", required=True, help="the guarantor's PMS id")
        parser.add_argument(
            "--at", help="ISO 8601 date-time (default: now; no offset: the organization's zone)"
        )
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"])
        at = parse_at(options["at"], organization=organization)
        try:
            bill = send_request(
                organization=organization, guarantor_id=options["guarantor"].strip(), at=at,
                actor_label="command:send_request",
            )  # fmt: skip
        except CampaignError as exc:
            raise CommandError(str(exc), returncode=2) from None
        row = campaign_rows([bill])[0]
        if options["json"]:
            self.emit_json(row)
            return
        states = ", ".join(f"{m['channel']} {m['state']}" for m in row["messages"]) or "no channels"
        self.stdout.write(f"{row['guarantor_id']} {row['bill_id']}: {states}")
