"""Argument parsing shared by the payments commands: bad input exits 2 with one line (SPEC §10)."""

from __future__ import annotations

import re
from datetime import date

from django.core.management.base import CommandError

from practices.models import Organization, Patient

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(raw: str, *, option: str) -> date:
    # date.fromisoformat alone would also take 20261124 and 2026-W48-2.
    try:
        if not _ISO_DATE.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise CommandError(f"{option} must be a date YYYY-MM-DD, got {raw!r}", returncode=2) from None


def parse_ids(raw: str) -> list[str]:
    ids = [item.strip() for item in raw.split(",") if item.strip()]
    if not ids:
        raise CommandError("--guarantor needs at least one id", returncode=2)
    return ids


def patient(organization: Organization, external_id: str) -> Patient:
    found = Patient.objects.filter(organization=organization, external_id=external_id).first()
    if found is None:
        raise CommandError(f"unknown guarantor {external_id!r} in {organization.slug}", returncode=2)
    return found
