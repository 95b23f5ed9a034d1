from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from practices.management.commands._base import ContractCommand
from practices.services import OrganizationExists, organization_create


class Command(ContractCommand):
    help = "Onboard an organization with default settings. Exits 2 if the slug exists or the zone is unknown."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--timezone", required=True, help="IANA zone, e.g. America/Denver")
        self.add_json_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            organization = organization_create(
                slug=options["slug"], name=options["name"], timezone_name=options["timezone"],
                actor_label="command:create_org",
            )  # fmt: skip
        except OrganizationExists:
            raise CommandError(f"organization {options['slug']!r} already exists", returncode=2) from None
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages), returncode=2) from None
        document = {"slug": organization.slug, "name": organization.name, "timezone": organization.timezone}
        if options["json"]:
            self.emit_json(document)
        else:
            self.stdout.write(f"Created organization {organization.slug} ({organization.timezone})")
