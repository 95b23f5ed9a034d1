"""The `org_settings` keys (SPEC §10). Each app registers the keys it owns; the command only calls here.

A key knows how to read its value as JSON, show it as the command-line string its parser takes, parse that
string, and write it. Updates validate every key first and then apply all of them in one transaction with
an audit event (T5), so a bad value changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from practices.models import Organization, validate_timezone
from practices.services import audit_record


class SettingError(ValueError):
    pass


def setting_text(value: Any) -> str:
    """A value read as JSON, written the way ``--set`` takes it: ``true``/``false``, ``none`` for null, a
    comma list without spaces (empty for an empty list), anything else as its text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


@dataclass(frozen=True)
class SettingKey:
    name: str
    read: Callable[[Organization], Any]
    parse: Callable[[str], Any]
    write: Callable[[Organization, Any], None]
    help: str = ""
    # The inverse of ``parse`` for a value ``read`` returned; the human output of the command prints it.
    show: Callable[[Any], str] = setting_text


REGISTRY: dict[str, SettingKey] = {}


def register(key: SettingKey) -> None:
    REGISTRY[key.name] = key


def org_settings_read(*, organization: Organization) -> dict[str, Any]:
    return {name: key.read(organization) for name, key in REGISTRY.items()}


def org_settings_lines(values: dict[str, Any]) -> list[str]:
    """``KEY=VALUE`` per setting, each exactly as ``--set`` takes it (so a line can be passed back as is)."""
    return [f"{name}={REGISTRY[name].show(value)}" for name, value in values.items()]


def org_settings_update(
    *, organization: Organization, assignments: list[str], actor: Any = None, actor_label: str = ""
) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` assignments; raises SettingError and changes nothing when any is invalid."""
    parsed: list[tuple[SettingKey, Any]] = []
    for assignment in assignments:
        name, sep, raw = assignment.partition("=")
        name = name.strip()
        if not sep:
            raise SettingError(f"expected KEY=VALUE, got {assignment!r}")
        key = REGISTRY.get(name)
        if key is None:
            raise SettingError(f"unknown setting {name!r}; known: {', '.join(sorted(REGISTRY))}")
        try:
            parsed.append((key, key.parse(raw.strip())))
        except (ValueError, ValidationError) as exc:
            message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            raise SettingError(f"bad value for {name}: {message}") from None

    with transaction.atomic():
        before = org_settings_read(organization=organization)
        for key, value in parsed:
            key.write(organization, value)
        after = org_settings_read(organization=organization)
        changes = {k: [before[k], after[k]] for k in after if before.get(k) != after[k]}
        if changes:
            audit_record(
                organization=organization,
                actor=actor,
                actor_label=actor_label,
                action="settings.change",
                obj=organization,
                changes=changes,
            )
    return after


def parse_bool(raw: str) -> bool:
    """Strict booleans: `true` or `false`."""
    if raw == "true":
        return True
    if raw == "false":
        return False
    raise SettingError("expected true or false")


def _parse_timezone(raw: str) -> str:
    validate_timezone(raw)
    return raw


def _write_timezone(organization: Organization, value: str) -> None:
    organization.timezone = value
    organization.save(update_fields=["timezone"])


register(
    SettingKey(
        name="timezone",
        read=lambda org: org.timezone,
        parse=_parse_timezone,
        write=_write_timezone,
        help="the organization's IANA time zone",
    )
)
