from __future__ import annotations

from typing import Any

from payments.campaigns import bulk_send, campaign_rows
from payments.management.commands._args import parse_at, parse_id_list
from practices.management.commands._base import ContractCommand
from practices.timezones import organization_today


class Command(ContractCommand):
    help = (
        "Send a bulk payment request (B2, B5) as of --at (default now): every guarantor on the list of the "
        "organization's date of --at (recomputed now), narrowed by --only, less --exclude. An id in --only that "
        "is not eligible is skipped, not forced. A --at without an offset is read in the organization's time "
        "zone. Running it again for the same date starts nothing new. Bad input exits 2."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--only", help="comma list of guarantor ids: send to these only, if eligible")
        parser.add_argument("--exclude", help="comma list of guarantor ids to leave out")
        parser.add_argument(
            "--at", help="ISO 8601 date-time (default: now; no offset: the organization's zone)"
        )
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"])
        at = parse_at(options["at"], organization=organization)
        only = parse_id_list(options["only"], option="--only")
        exclude = parse_id_list(options["exclude"], option="--exclude")
        bills = bulk_send(
            organization=organization, at=at, only=only, exclude=exclude, actor_label="command:bulk_send"
        )
        rows = campaign_rows(bills)
        on = organization_today(organization, at=at)
        skipped = sorted(set(only or []) - {row["guarantor_id"] for row in rows})
        if skipped:
            self.stderr.write(f"not eligible on {on.isoformat()}, skipped: {', '.join(skipped)}")
        if options["json"]:
            self.emit_json(rows)
            return
        for row in rows:
            states = ", ".join(f"{m['channel']} {m['state']}" for m in row["messages"]) or "no channels"
            self.stdout.write(f"{row['guarantor_id']:<14} {row['bill_id']:<40} {states}")
        self.stdout.write(f"{len(rows)} payment request(s) sent for {on.isoformat()}")
