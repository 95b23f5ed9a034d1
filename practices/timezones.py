"""Recipient time zones derived offline (Q3) and the organization's "today".

Q3 is cautious: where the place is uncertain (an area code or a ZIP that spans zones) the recipient has a
**set** of candidate zones (``candidate_zones``), and a message may go only when it is outside the quiet hours in
every one of them. The offline data (``zipcodes``, ``phonenumbers``) is corrected by ``practices.zone_corrections``.
The set is computed from what the patient row already holds (its own zone and where it came from, the ZIP, the
mobile number), with in-memory tables: the send path adds no query for it.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import date, datetime

import zipcodes
from django.utils import timezone
from phonenumbers.tzdata import TIMEZONE_DATA

from practices.models import Organization, TimezoneSource
from practices.zone_corrections import corrections_by_key


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


@functools.cache
def _area_code_zones() -> dict[str, tuple[str, ...]]:
    """Every zone ``phonenumbers`` names for any prefix of each NANP area code, most prefixes first: a mobile
    number keeps its prefix when its owner moves, so the area code, not the prefix, is the unit (Q3)."""
    counts: dict[str, dict[str, int]] = {}
    for prefix, zones in TIMEZONE_DATA.items():
        if prefix.startswith("1") and len(prefix) >= 4:
            area = counts.setdefault(prefix[1:4], {})
            for zone in zones:
                if zone in known_timezones():
                    area[zone] = area.get(zone, 0) + 1
    return {
        area: tuple(sorted(zones, key=lambda z: (-zones[z], z))) for area, zones in counts.items() if zones
    }


@functools.cache
def _zip_corrections() -> dict[str, tuple[str, ...]]:
    return corrections_by_key("zip")


@functools.cache
def _area_code_corrections() -> dict[str, tuple[str, ...]]:
    return corrections_by_key("area_code")


def zones_for_zip(zip_code: str) -> tuple[str, ...]:
    """The candidate zones of a mailing ZIP: the corrections table's, else the offline data's one zone."""
    if not zip_code:
        return ()
    corrected = _zip_corrections().get(zip_code[:5])
    if corrected:
        return corrected
    tz = timezone_from_zip(zip_code)
    return (tz,) if tz else ()


@functools.lru_cache(maxsize=65_536)
def zones_for_phone(e164: str) -> tuple[str, ...]:
    """The candidate zones of a US/Canadian mobile number's area code (corrected), () when it names none."""
    if not e164.startswith("+1") or len(e164) != 12:
        return ()
    area = e164[2:5]
    return _area_code_corrections().get(area) or _area_code_zones().get(area, ())


@functools.lru_cache(maxsize=65_536)
def candidate_zones(
    *, timezone: str, source: str, zip_code: str, phone: str, organization_timezone: str
) -> tuple[str, ...]:
    """Q3: the recipient's candidate zones, first the one shown to staff.

    The PMS's own zone for the patient is certain (one zone). Else the mailing ZIP's zones, else the area
    code's, with the zone stored on the patient if it is not among them; else the organization's. Derived from
    the ZIP and phone on every call (cached), so a correction applies to every patient at once, whenever they
    were imported."""
    if source == TimezoneSource.FEED and timezone:
        return (timezone,)
    zones = zones_for_zip(zip_code) or zones_for_phone(phone)
    if timezone and timezone not in zones:
        zones = (timezone, *zones)  # stored by an older import or by hand: cautious, it joins the set
    return zones or (organization_timezone,)


def derive_timezone(*, explicit: str, zip_code: str, phone: str) -> tuple[str, str]:
    """Q3: the patient's own zone, else the mailing ZIP's, else the area code's (the first of its candidate
    zones, corrected), else ''.

    '' means "the organization's zone", resolved when a message is scheduled, so that a change of the
    organization's zone applies to every patient that has no zone of their own. What is stored is the zone shown
    to staff; sending uses the whole candidate set (``candidate_zones``).
    """
    if explicit:
        return explicit, TimezoneSource.FEED
    if zones := zones_for_zip(zip_code):
        return zones[0], TimezoneSource.ZIP
    if zones := zones_for_phone(phone):
        return zones[0], TimezoneSource.PHONE
    return "", TimezoneSource.ORGANIZATION


def organization_today(organization: Organization, *, at: datetime | None = None) -> date:
    """'Today' for an organization: the date in its time zone (SPEC §2)."""
    moment = at or timezone.now()
    return moment.astimezone(organization.tzinfo).date()
