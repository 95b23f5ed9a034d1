"""Argument parsing shared by the payments commands: bad input exits 2 with one line (SPEC §10)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import overload

from django.core.management.base import CommandError
from django.utils import timezone

from practices.models import Organization, Patient

# A date and a time at least to the minute, an optional offset or Z: no bare dates, no week dates.
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?")


def parse_at(raw: str | None, *, organization: Organization) -> datetime:
    """``--at``: an ISO 8601 date-time; without an offset it is read in the organization's time zone.

    None means now. Anything else exits 2.
    """
    if raw is None:
        return timezone.now()
    try:
        if not _ISO_DATETIME.fullmatch(raw.strip()):
            raise ValueError(raw)
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise CommandError(
            f"--at must be an ISO 8601 date-time such as 2026-11-24T09:30 or 2026-11-24T16:30:00Z, got {raw!r}",
            returncode=2,
        ) from None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=organization.tzinfo)
    return moment


@overload
def parse_id_list(raw: str, *, option: str) -> list[str]: ...
@overload
def parse_id_list(raw: None, *, option: str) -> None: ...
@overload
def parse_id_list(raw: str | None, *, option: str) -> list[str] | None: ...
def parse_id_list(raw: str | None, *, option: str) -> list[str] | None:
    """A comma-separated option's ids, deduplicated in order; None for an option not given."""
    if raw is None:
        return None
    ids = list(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
    if not ids:
        raise CommandError(f"{option} needs at least one guarantor id", returncode=2)
    return ids


def patient(organization: Organization, external_id: str) -> Patient:
    found = Patient.objects.filter(organization=organization, external_id=external_id).first()
    if found is None:
        raise CommandError(f"unknown guarantor {external_id!r} in {organization.slug}", returncode=2)
    return found
