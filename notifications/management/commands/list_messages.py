from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from notifications.models import State
from notifications.selectors_outbox import outbox_messages, outbox_row
from practices.management.commands._base import ContractCommand


class Command(ContractCommand):
    help = "List an organization's outbox (messages with their state, provider id and reason)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--guarantor", default="", help="a guarantor's PMS id")
        parser.add_argument("--state", default="", help=f"one of: {', '.join(State.values)}")
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"])
        if options["state"] and options["state"] not in State.values:
            raise CommandError(
                f"unknown state {options['state']!r}; one of: {', '.join(State.values)}", returncode=2
            )
        rows = [
            outbox_row(m)
            for m in outbox_messages(
                organization=organization, guarantor_id=options["guarantor"], state=options["state"]
            )
        ]
        if options["json"]:
            self.emit_json(rows)
            return
        for row in rows:
            self.stdout.write(
                f"{row['id']:>8} {row['guarantor_id']:<12} {row['bill_id'] or '-':<14} {row['channel']:<6} "
                f"{row['kind']:<12} {row['state']:<12} {row['reason']}"
            )
