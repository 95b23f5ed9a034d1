"""An organization's PMS connection: read it (defaults when none is saved), change it, open its client."""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any

from django.conf import settings
from django.utils import timezone

from pms.keys import PmsKeyError, secret_decrypt, secret_encrypt
from pms.models import Connection, PmsKind
from pms.opendental.client import REMOTE_API, OpenDentalClient, OpenDentalError
from practices.models import Organization

_KEY = re.compile(r"^[A-Za-z0-9._~+=-]{4,200}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class PmsConfigError(ValueError):
    """A value that cannot be stored (bad key, URL or time), or keys that cannot be read."""


def connection_get(*, organization: Organization) -> Connection:
    """The saved connection, or an unsaved one with the defaults (pms none)."""
    found = Connection.objects.filter(organization=organization).first()
    return found if found is not None else Connection(organization=organization)


def connection_for_update(*, organization: Organization) -> Connection:
    connection, _ = Connection.objects.get_or_create(organization=organization)
    return connection


def key_state(token: str) -> str:
    """What anyone is shown of a stored key (org_settings, the admin, JSON)."""
    return "set" if token else "unset"


def parse_key(raw: str) -> str | None:
    """A developer or customer key as typed; "" for ``set`` (keep the stored one), None for ``unset``."""
    if raw == "set":
        return ""
    if raw == "unset":
        return None
    if not _KEY.match(raw):
        raise PmsConfigError("expected the key as Open Dental issued it (letters and digits), set or unset")
    return raw


def stored_key(current: str, value: str | None, *, name: str) -> str:
    """The token to store for ``value`` as ``parse_key`` returned it."""
    if value is None:
        return ""
    if value == "":
        if not current:
            raise PmsConfigError(f"{name}=set keeps the stored key, but none is stored: give the key itself")
        return current
    try:
        return secret_encrypt(value)
    except PmsKeyError as exc:
        raise PmsConfigError(str(exc)) from None


def parse_base_url(raw: str) -> str:
    if raw in ("", "none"):
        return ""
    if not re.match(r"^https?://[^\s/]+(/\S*)?$", raw):
        raise PmsConfigError(f"expected an http(s) URL such as {REMOTE_API} (empty: that one)")
    return raw.rstrip("/")


def parse_sync_time(raw: str) -> time:
    match = _TIME.match(raw)
    if not match:
        raise PmsConfigError("expected HH:MM, local time, e.g. 05:00")
    return time(int(match.group(1)), int(match.group(2)))


def connection_set_pms(connection: Connection, value: str, *, now: datetime | None = None) -> None:
    connection.pms = value
    if value == PmsKind.OPENDENTAL and connection.posting_starts_at is None:
        # C3: payments taken before the connection went to Open Dental through export_payments already.
        connection.posting_starts_at = now or timezone.now()


def opendental_client(connection: Connection, **options: Any) -> OpenDentalClient:
    """The client for the connection's Open Dental; PmsConfigError names what is missing."""
    if connection.pms != PmsKind.OPENDENTAL:
        raise PmsConfigError(
            f"the organization's pms is {connection.pms!r}, not opendental (org_settings pms)"
        )
    missing = [name for name, token in (("pms_developer_key", connection.developer_key_encrypted),
                                        ("pms_customer_key", connection.customer_key_encrypted)) if not token]  # fmt: skip
    if missing:
        raise PmsConfigError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set")
    try:
        developer = secret_decrypt(connection.developer_key_encrypted)
        customer = secret_decrypt(connection.customer_key_encrypted)
    except PmsKeyError as exc:
        raise PmsConfigError(str(exc)) from None
    options.setdefault("timeout", settings.PMS_HTTP_TIMEOUT)
    try:
        return OpenDentalClient(
            base_url=connection.base_url or REMOTE_API,
            developer_key=developer,
            customer_key=customer,
            **options,
        )
    except OpenDentalError as exc:
        raise PmsConfigError(str(exc)) from None
