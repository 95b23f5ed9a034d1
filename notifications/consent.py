"""The consent ledger (K3): every grant and revocation of consent per organization, channel and address, as
proof. The rows are OptOutEvent: opt_out_set() writes those that change an address opt-out (STOP/START, an ESP
complaint, unsubscribe or resubscribe, Twilio's 21610, staff); this module writes the grants and PMS changes
that leave the opt-out as it is (a quick-add consent, the PMS flags of an import), and reads a guarantor's
history and the CSV exports."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from notifications.models import Channel, Message, OptOutEvent, OptOutSource
from notifications.optouts import actor_fields, ledger_text
from practices.importer.consent import ConsentChange
from practices.models import Organization, Patient, SmsConsent
from practices.services import audit_record

BATCH = 2000


def consent_record(
    *, organization: Organization, channel: str, address: str, active: bool, source: str,
    patient: Patient | None = None, actor: Any = None, text: str = "", at: datetime | None = None,
) -> OptOutEvent:  # fmt: skip
    """A ledger row that changes no opt-out: a grant recorded by staff (quick-add consent) or a flag the PMS
    holds. ``active`` is the state after it, as on every ledger row: true a revocation, false a grant."""
    return OptOutEvent.objects.create(
        organization=organization, channel=channel, address=address, patient=patient, active=active,
        source=source, text=ledger_text(text), at=at or timezone.now(), **actor_fields(actor),
    )  # fmt: skip


def _pms_value(value: Any) -> str:
    if value is None:
        return "(new patient)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def consent_from_pms(organization: Organization, changes: list[ConsentChange], at: datetime) -> None:
    """The import's hook (practices.importer.consent): one ledger row per consent flag an import changed, in
    bulk. ``sms_consent`` yes is a grant, no or unknown a revocation; a PMS opt-out flag set is a revocation,
    cleared a grant."""
    rows = []
    for change in changes:
        active = change.new != SmsConsent.YES if change.field == "sms_consent" else bool(change.new)
        rows.append(
            OptOutEvent(
                organization=organization, channel=change.channel, address=change.address,
                patient_id=change.patient_id, active=active, source=OptOutSource.PMS_FLAG,
                text=f"PMS {change.field}: {_pms_value(change.old)} → {_pms_value(change.new)} (feed import)",
                at=at,
            )
        )  # fmt: skip
    OptOutEvent.objects.bulk_create(rows, batch_size=BATCH)


def guarantor_addresses(*, guarantor: Patient) -> set[str]:
    """The numbers and emails a guarantor is reached at: on file, and any we sent to (a quick-added number)."""
    on_file = {guarantor.mobile_phone, guarantor.email}
    sent_to = Message.objects.filter(
        organization_id=guarantor.organization_id,
        patient=guarantor,
        channel__in=(Channel.SMS, Channel.EMAIL),
    ).values_list("destination", flat=True)
    return {address for address in (*on_file, *sent_to) if address}


def consent_history(*, guarantor: Patient) -> QuerySet[OptOutEvent]:
    """The guarantor's ledger, newest first: the rows of its own (PMS flags, quick-add) and every row at an
    address it is reached at, in its organization only (an address shared with another practice's patient
    never shows that practice's rows)."""
    addresses = guarantor_addresses(guarantor=guarantor)
    return (
        OptOutEvent.objects.filter(organization_id=guarantor.organization_id)
        .filter(Q(patient=guarantor) | Q(address__in=addresses, patient__isnull=True))
        .select_related("patient", "actor")
        .order_by("-at", "-pk")
    )


def organization_ledger(*, organization: Organization) -> QuerySet[OptOutEvent]:
    """Every ledger row of an organization, oldest first (the admin's proof export)."""
    return (
        OptOutEvent.objects.filter(organization=organization)
        .select_related("patient", "actor")
        .order_by("at", "pk")
    )


CSV_HEADER = [
    "organization", "channel", "address", "event", "source", "at_utc", "at_local", "time_zone", "actor",
    "keyword", "text", "patient_external_id", "ledger_id",
]  # fmt: skip


def event_label(event: OptOutEvent) -> str:
    return "revocation" if event.active else "grant"


def actor_label(event: OptOutEvent) -> str:
    """Who recorded it: the staff user (as named then), or the patient/PMS for everything else."""
    if event.actor_name:
        return event.actor_name
    if event.source == OptOutSource.PMS_FLAG:
        return "PMS"
    if event.source in (OptOutSource.STAFF, OptOutSource.QUICK_ADD):
        return "staff (user deleted)"
    return "patient"


def _cell(value: str) -> str:
    """A patient's own words in a cell a spreadsheet would run as a formula get a leading apostrophe (OWASP's
    CSV injection advice); the ledger row itself keeps them exactly."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv_rows(events: Iterable[OptOutEvent], organization: Organization) -> Iterator[list[str]]:
    zone = organization.tzinfo
    for event in events:
        local = event.at.astimezone(zone)
        yield [
            organization.slug, event.channel, event.address, event_label(event), event.source,
            event.at.astimezone(UTC).isoformat(), local.isoformat(), organization.timezone,
            actor_label(event), _cell(event.keyword), _cell(event.text),
            event.patient.external_id if event.patient_id and event.patient else "", str(event.pk),
        ]  # fmt: skip


class _Echo:
    def write(self, value: str) -> str:
        return value


def ledger_csv_lines(*, events: Iterable[OptOutEvent], organization: Organization) -> Iterator[str]:
    """The ledger as CSV lines (header first), for a streaming response."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for values in _csv_rows(events, organization):
        yield writer.writerow(values)


def ledger_csv(*, events: Iterable[OptOutEvent], organization: Organization) -> str:
    buffer = io.StringIO()
    buffer.writelines(ledger_csv_lines(events=events, organization=organization))
    return buffer.getvalue()


def ledger_export_audit(*, organization: Organization, actor: Any, guarantor: Patient | None = None) -> None:
    """T5: who downloaded consent proof (addresses, the patients' own words), when: the organization's whole
    ledger (``guarantor`` None) or one guarantor's history. Written when the download starts."""
    if guarantor is None:
        audit_record(
            organization=organization, actor=actor, action="consent.ledger_exported", obj=organization
        )
    else:
        audit_record(
            organization=organization, actor=actor, action="consent.history_exported", obj=guarantor,
            changes={"guarantor": guarantor.external_id},
        )  # fmt: skip
