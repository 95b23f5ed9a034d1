"""Shared pieces of the §10 commands: --json output on stdout only, human output elsewhere."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from practices.models import Organization
from practices.timezones import organization_today

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(raw: str, *, option: str) -> date:
    """A date option of SPEC §10 (``YYYY-MM-DD``); anything else exits 2 with one line."""
    # date.fromisoformat alone would also take 20261124 and 2026-W48-2.
    try:
        if not _ISO_DATE.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise CommandError(f"{option} must be a date YYYY-MM-DD, got {raw!r}", returncode=2) from None


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

    def day(self, raw: str | None, organization: Organization) -> date:
        """``--date`` when given, else today in the organization's time zone."""
        return parse_date(raw, option="--date") if raw else organization_today(organization)
