"""The PMS's consent flags as an import changes them (K3): ``sms_consent`` and the PMS opt-out flags.

The notifications app keeps the consent ledger and registers a hook here at start-up; practices never imports
notifications (data flows one way). The import reads the organization's current flags once, in one query,
before it writes, and reports only what changed (a new patient: a flag other than the default), so an import
that changes nothing writes nothing and a re-import costs one read."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from practices.models import Organization, Patient, SmsConsent

# The feed's consent flags: (field, channel it concerns, the value a new patient has unless the feed says).
CONSENT_FLAGS: tuple[tuple[str, str, Any], ...] = (
    ("sms_consent", "sms", SmsConsent.UNKNOWN),
    ("pms_sms_opt_out", "sms", False),
    ("pms_email_opt_out", "email", False),
)
Before = dict[str, tuple[Any, ...]]


@dataclass(frozen=True)
class ConsentChange:
    """One consent flag of one patient as the PMS changed it; ``old`` is None for a patient new to us."""

    patient_id: int
    field: str
    channel: str
    address: str
    old: Any
    new: Any


ConsentHook = Callable[[Organization, list[ConsentChange], datetime], None]
_hooks: list[ConsentHook] = []


def register_consent_hook(hook: ConsentHook) -> None:
    if hook not in _hooks:
        _hooks.append(hook)


def consent_before(org: Organization) -> Before | None:
    """The organization's consent flags by external id before the import writes, or None when nobody listens."""
    if not _hooks:
        return None
    fields = [name for name, _, _ in CONSENT_FLAGS]
    return {
        external_id: tuple(values)
        for external_id, *values in Patient.objects.filter(organization=org).values_list(
            "external_id", *fields
        )
    }


def consent_report(*, org: Organization, before: Before | None, rows: Iterable[Any], at: datetime) -> None:
    """Tell the hooks what the import changed. ``rows`` are the written PatientRows (with the flags' fields,
    ``mobile_phone`` and ``email``); one more query (their ids) only when something changed."""
    if before is None:
        return
    pending: list[tuple[str, str, str, str, Any, Any]] = []
    for row in rows:
        old = before.get(row.external_id)
        for position, (name, channel, default) in enumerate(CONSENT_FLAGS):
            new = getattr(row, name)
            was = None if old is None else old[position]
            if (old is None and new != default) or (old is not None and was != new):
                address = row.mobile_phone if channel == "sms" else row.email
                pending.append((row.external_id, name, channel, address, was, new))
    if not pending:
        return
    ids = dict(
        Patient.objects.filter(organization=org, external_id__in={item[0] for item in pending}).values_list(
            "external_id", "pk"
        )
    )
    changes = [
        ConsentChange(ids[external_id], name, channel, address, was, new)
        for external_id, name, channel, address, was, new in pending
    ]
    for hook in _hooks:
        hook(org, changes, at)
