from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from payments.management.commands._args import parse_id_list
from payments.services import SnoozeError, snooze_create
from practices.management.commands._base import ContractCommand, parse_date
from practices.timezones import organization_today


class Command(ContractCommand):
    help = (
        "Snooze guarantors (B3): off the bulk list until the re-enrol date, which must be after the "
        "organization's today. A running snooze of a guarantor is replaced."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--guarantor", required=True, help="PMS id(s), comma separated")
        parser.add_argument("--until", required=True, help="re-enrol date YYYY-MM-DD")
        parser.add_argument("--reason", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"])
        until = parse_date(options["until"], option="--until")
        guarantor: str = options["guarantor"]  # a required option
        try:
            snoozes = snooze_create(
                organization=organization, guarantor_ids=parse_id_list(guarantor, option="--guarantor"), until=until,
                reason=options["reason"], actor_label="command:snooze", today=organization_today(organization),
            )  # fmt: skip
        except SnoozeError as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.stdout.write(f"snoozed {len(snoozes)} guarantor(s) until {until.isoformat()}")
