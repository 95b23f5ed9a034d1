"""Argument parsing shared by the payments commands: bad input exits 2 with one line (SPEC §10)."""

from __future__ import annotations

from django.core.management.base import CommandError

from practices.models import Organization, Patient


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
