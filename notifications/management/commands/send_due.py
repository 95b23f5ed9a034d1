from __future__ import annotations

from typing import Any

from notifications.outbox import messages_send_due
from practices.management.commands._base import ContractCommand


class Command(ContractCommand):
    help = (
        "Do the outbox tick's work now, in this process: send every due text and email (pending, or held by "
        "quiet hours until a time that has come) through its channel, with the same claims and pre-send "
        "re-checks as a worker (N1). Paper waits for render_letters. Prints what became of them."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", help="the organization's slug (default: every organization)")
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"]) if options["org"] else None
        counts = messages_send_due(organization=organization)
        if options["json"]:
            self.emit_json(counts)
            return
        self.stdout.write(" ".join(f"{key}={value}" for key, value in counts.items()))
