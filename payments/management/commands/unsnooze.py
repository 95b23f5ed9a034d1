from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from payments.management.commands._args import parse_id_list
from payments.services import SnoozeError, snooze_lift
from practices.management.commands._base import ContractCommand


class Command(ContractCommand):
    help = "Lift the running snoozes of guarantors early (B3); they reappear on the list if still eligible."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--guarantor", required=True, help="PMS id(s), comma separated")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"])
        guarantor: str = options["guarantor"]  # a required option
        try:
            lifted = snooze_lift(
                organization=organization, guarantor_ids=parse_id_list(guarantor, option="--guarantor"),
                actor_label="command:unsnooze",
            )  # fmt: skip
        except SnoozeError as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.stdout.write(f"lifted {lifted} snooze(s)")
