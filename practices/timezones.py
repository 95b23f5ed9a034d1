"""Recipient time zones derived offline (Q3) and the organization's "today"."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import date, datetime

import phonenumbers
import zipcodes
from django.utils import timezone
from phonenumbers import timezone as phone_timezones

from practices.models import Organization, TimezoneSource


@functools.cache
def _zip_to_timezone() -> dict[str, str]:
    # zipcodes.matching() is a linear scan (~2 ms); one dict built once serves bulk imports.
    return {z["zip_code"]: z["timezone"] for z in zipcodes.list_all() if z.get("timezone")}


@functools.cache
def _zip_to_state() -> dict[str, str]:
    return {z["zip_code"]: z["state"] for z in zipcodes.list_all()}


@functools.cache
def known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_from_zip(zip_code: str) -> str | None:
    return _zip_to_timezone().get(zip_code[:5]) if zip_code else None


def state_for_zip(zip_code: str) -> str | None:
    return _zip_to_state().get(zip_code[:5]) if zip_code else None


@functools.lru_cache(maxsize=65_536)  # bounded: a worker imports millions of distinct numbers over its life
def timezone_from_phone(e164: str) -> str | None:
    """The zone of a phone's area code when it maps to exactly one zone (Alaska's 907 maps to two)."""
    if not e164:
        return None
    try:
        number = phonenumbers.parse(e164, "US")
    except phonenumbers.NumberParseException:
        return None
    zones = phone_timezones.time_zones_for_number(number)
    if len(zones) == 1 and zones[0] in known_timezones():
        return zones[0]
    return None


def derive_timezone(*, explicit: str, zip_code: str, phone: str) -> tuple[str, str]:
    """Q3: the patient's own zone, else the mailing ZIP's, else a single-zone area code's, else ''.

    '' means "the organization's zone", resolved when a message is scheduled, so that a change of the
    organization's zone applies to every patient that has no zone of their own.
    """
    if explicit:
        return explicit, TimezoneSource.FEED
    if tz := timezone_from_zip(zip_code):
        return tz, TimezoneSource.ZIP
    if tz := timezone_from_phone(phone):
        return tz, TimezoneSource.PHONE
    return "", TimezoneSource.ORGANIZATION


def organization_today(organization: Organization, *, at: datetime | None = None) -> date:
    """'Today' for an organization: the date in its time zone (SPEC §2)."""
    moment = at or timezone.now()
    return moment.astimezone(organization.tzinfo).date()
