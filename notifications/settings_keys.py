"""`org_settings` keys owned by notifications: quiet_hours (Q1)."""

from __future__ import annotations

import re
from datetime import time

from notifications.models import NotificationSettings
from practices.models import Organization
from practices.org_settings import SettingError, SettingKey, register

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


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
