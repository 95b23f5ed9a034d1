from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from practices.management.commands._base import ContractCommand
from practices.org_settings import SettingError, org_settings_lines, org_settings_read, org_settings_update


class Command(ContractCommand):
    help = (
        "Show or set an organization's payment and dunning settings (KEY=VALUE; see SPEC §10 for the keys). "
        "Shown as KEY=VALUE lines in the form --set takes."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True)
        # Repeatable, and one --set may carry several KEY=VALUE (SPEC §10).
        parser.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE")
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self.organization(options["org"])
        if options["set"]:
            try:
                values = org_settings_update(
                    organization=organization, assignments=options["set"], actor_label="command:org_settings"
                )
            except SettingError as exc:
                raise CommandError(str(exc), returncode=2) from None
        else:
            values = org_settings_read(organization=organization)
        if options["json"]:
            self.emit_json(values)
        else:
            for line in org_settings_lines(values):
                self.stdout.write(line)
