"""`org_settings` keys of the PMS connectors (SPEC §10, §13.2): pms, pms_base_url, pms_developer_key,
pms_customer_key (stored encrypted, shown as set/unset), pms_sync_time, and pms_no_contact_billing_types (the
Open Dental billing types that mean do_not_contact, C2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pms.connections import (
    PmsConfigError,
    connection_for_update,
    connection_get,
    connection_set_pms,
    key_state,
    parse_base_url,
    parse_key,
    parse_sync_time,
    stored_key,
)
from pms.models import PmsKind
from practices.models import Organization
from practices.org_settings import SettingError, SettingKey, register


def _checked(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def run(raw: str) -> Any:
        try:
            return parse(raw)
        except PmsConfigError as exc:
            raise SettingError(str(exc)) from None

    return run


def _parse_pms(raw: str) -> str:
    if raw not in PmsKind.values:
        raise SettingError(f"expected one of {', '.join(PmsKind.values)}")
    return raw


def _write_pms(organization: Organization, value: str) -> None:
    connection = connection_for_update(organization=organization)
    connection_set_pms(connection, value)
    connection.save(update_fields=["pms", "posting_starts_at"])


def _key_writer(field: str, name: str) -> Callable[[Organization, Any], None]:
    def write(organization: Organization, value: str | None) -> None:
        connection = connection_for_update(organization=organization)
        try:
            setattr(connection, field, stored_key(getattr(connection, field), value, name=name))
        except PmsConfigError as exc:
            raise SettingError(f"bad value for {name}: {exc}") from None
        connection.save(update_fields=[field])

    return write


def _writer(field: str) -> Callable[[Organization, Any], None]:
    def write(organization: Organization, value: Any) -> None:
        connection = connection_for_update(organization=organization)
        setattr(connection, field, value)
        connection.save(update_fields=[field])

    return write


def _parse_names(raw: str) -> list[str]:
    return [name.strip() for name in raw.split(",") if name.strip()]


register(
    SettingKey(
        name="pms",
        read=lambda org: connection_get(organization=org).pms,
        parse=_parse_pms,
        write=_write_pms,
        help="§13.2: none, or opendental (sync_pms and the daily sync at pms_sync_time)",
    )
)
register(
    SettingKey(
        name="pms_base_url",
        read=lambda org: connection_get(organization=org).base_url,
        parse=_checked(parse_base_url),
        write=_writer("base_url"),
        help="the PMS API's base URL; empty: Open Dental's Remote API (https://api.opendental.com/api/v1)",
    )
)


def _key_reader(field: str) -> Callable[[Organization], str]:
    return lambda org: key_state(getattr(connection_get(organization=org), field))


for _field, _name, _what in (
    ("developer_key_encrypted", "pms_developer_key", "the developer key"),
    ("customer_key_encrypted", "pms_customer_key", "the office's customer key"),
):
    register(
        SettingKey(
            name=_name,
            read=_key_reader(_field),
            parse=_checked(parse_key),
            write=_key_writer(_field, _name),
            help=f"{_what} (stored encrypted, shown as set/unset; unset clears it, set keeps it)",
        )
    )
register(
    SettingKey(
        name="pms_sync_time",
        read=lambda org: f"{connection_get(organization=org).sync_time:%H:%M}",
        parse=_checked(parse_sync_time),
        write=_writer("sync_time"),
        help="HH:MM, local time of the daily PMS sync",
    )
)
register(
    SettingKey(
        name="pms_no_contact_billing_types",
        read=lambda org: list(connection_get(organization=org).no_contact_billing_types or []),
        parse=_parse_names,
        write=_writer("no_contact_billing_types"),
        help="C2: comma list of Open Dental billing types (any case) that mean no statements or collections",
    )
)
