"""`org_settings` keys owned by notifications: quiet_hours (Q1) and the compliance keys of §15 K1/K2:
frequency_cap (``N/Dd`` or ``none``; JSON: the string, or null), send_on_sundays, send_on_holidays (booleans);
require_sms_consent (boolean, §13.2); and hourly_sms_limit (K5: an integer from 1 or ``none``; JSON: the
integer, or null).

The NotificationSettings row is created on the first write; until then the defaults apply (21:00-08:00, no cap,
Sundays and holidays allowed)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import time
from typing import Any

from notifications.frequency import CAP_FORM, FrequencyCap, parse_frequency_cap
from notifications.hourly_limit import LIMIT_FORM, parse_hourly_sms_limit
from notifications.models import NotificationSettings
from practices.models import Organization
from practices.org_settings import SettingError, SettingKey, parse_bool, register

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def notification_settings_create(*, organization: Organization) -> NotificationSettings:
    """The organization's sending settings row with its defaults (quiet hours 21:00-08:00, no cap, every day,
    no hourly limit), created with the organization (``organization_settings_create``) so that a billing
    manager finds it in the admin; idempotent."""
    row, _ = NotificationSettings.objects.get_or_create(organization=organization)
    return row


def parse_quiet_hours(raw: str) -> tuple[time, time]:
    match = _WINDOW.match(raw)
    if not match:
        raise SettingError("expected HH:MM-HH:MM, e.g. 21:00-08:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return time(h1, m1), time(h2, m2)


def _read(organization: Organization) -> str:
    row = NotificationSettings.objects.filter(organization=organization).first()
    start, end = (row.quiet_start, row.quiet_end) if row else (time(21), time(8))
    return f"{start:%H:%M}-{end:%H:%M}"


def _write(organization: Organization, value: tuple[time, time]) -> None:
    NotificationSettings.objects.update_or_create(
        organization=organization, defaults={"quiet_start": value[0], "quiet_end": value[1]}
    )


register(
    SettingKey(name="quiet_hours", read=_read, parse=parse_quiet_hours, write=_write, help="HH:MM-HH:MM")
)


def _field_reader(field: str, default: Any) -> Callable[[Organization], Any]:
    def read(organization: Organization) -> Any:
        row = NotificationSettings.objects.filter(organization=organization).first()
        return default if row is None else getattr(row, field)

    return read


def _field_writer(field: str) -> Callable[[Organization, Any], None]:
    def write(organization: Organization, value: Any) -> None:
        NotificationSettings.objects.update_or_create(organization=organization, defaults={field: value})

    return write


def _read_cap(organization: Organization) -> str | None:
    return _field_reader("frequency_cap", "")(organization) or None


def _write_cap(organization: Organization, value: FrequencyCap | None) -> None:
    _field_writer("frequency_cap")(organization, "" if value is None else str(value))


register(
    SettingKey(
        name="frequency_cap",
        read=_read_cap,
        parse=parse_frequency_cap,
        write=_write_cap,
        help=f"K2: per guarantor and household, across SMS, email and paper: {CAP_FORM}",
    )
)
for _name, _help in (
    ("send_on_sundays", "K1: false holds messages that would go on a Sunday in the recipient's zone"),
    ("send_on_holidays", "K1: false holds messages on US federal holidays in the recipient's zone"),
    ("require_sms_consent", "§13.2: true texts only patients whose PMS records sms_consent yes"),
):
    register(
        SettingKey(
            name=_name,
            read=_field_reader(_name, _name != "require_sms_consent"),
            parse=parse_bool,
            write=_field_writer(_name),
            help=_help,
        )
    )
register(
    SettingKey(
        name="hourly_sms_limit",
        read=_field_reader("hourly_sms_limit", None),
        parse=parse_hourly_sms_limit,
        write=_field_writer("hourly_sms_limit"),
        help=f"K5: texts per clock hour for the organization (carrier registration limits): {LIMIT_FORM}",
    )
)
