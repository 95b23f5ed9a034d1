"""Shared pieces of the §10 commands: --json output on stdout only, human output elsewhere."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from practices.models import Organization


class ContractCommand(BaseCommand):
    def add_json_argument(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")

    def emit_json(self, document: Any) -> None:
        self.stdout.write(json.dumps(document, indent=2, default=str))

    def organization(self, slug: str) -> Organization:
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            raise CommandError(f"unknown organization {slug!r}", returncode=2)
        return organization
