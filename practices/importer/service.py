"""Apply a PMS feed: validate every record on its own, then write the valid ones set-based (I0-I6)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from practices.accounts import account_figures
from practices.bulk import bulk_upsert
from practices.importer.consent import consent_before, consent_report
from practices.importer.policy import BillPolicy, bill_clock, policy_for, run_post_import_hooks
from practices.importer.records import (
    PatientRow,
    RecordError,
    StatementRow,
    Warnings,
    pointer,
    read_patient,
    read_statement,
    storable,
)
from practices.models import (
    BILL_OWING_STATES,
    Account,
    Bill,
    BillSource,
    BillState,
    ClosedReason,
    FeedImport,
    FeedSource,
    FeedStatus,
    Organization,
    Patient,
)

logger = logging.getLogger(__name__)

EARLIEST_FEED_YEAR = 1900
MAX_FEED_AHEAD = timedelta(days=1)

BATCH = 2000
PATIENT_UPDATE_FIELDS = [
    "guarantor_external_id", "is_guarantor", "first_name", "last_name", "date_of_birth", "email",
    "mobile_phone", "address_line1", "address_line2", "address_city", "address_state", "address_zip",
    "address_status", "timezone", "timezone_source", "last_visit_date", "on_payment_plan", "open_claims",
    "do_not_contact", "pms_sms_opt_out", "pms_email_opt_out", "last_feed_at", "home_phone", "work_phone",
    "sms_consent", "preferred_name", "language", "care_of", "deceased",
]  # fmt: skip
ACCOUNT_UPDATE_FIELDS = [
    "bucket_0_30", "bucket_31_60", "bucket_61_90", "bucket_over_90", "insurance_estimate", "total",
    "patient_portion", "aging_category", "as_of",
]  # fmt: skip
BILL_UPDATE_FIELDS = [
    "guarantor_id", "statement_date", "due_date", "amount_due", "effective_created_date", "generation",
    "dunning_status", "state", "last_seen_at", "ended_at", "next_dunning_date", "amount_changed", "patient_id",
    "sent_by_pms",
]  # fmt: skip


@dataclass
class ImportSummary:
    """What became of a feed; ``as_json()`` is the contract of SPEC §10 (import_feed)."""

    status: str
    applied: int = 0
    rejected: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    reason: str = ""
    feed_import_id: int | None = None
    forbidden: bool = False
    # The document is well formed but its generated_at cannot be true now (before 1900, or more than a day
    # ahead of our clock): unusable like any bad document, but the API says 409, the feed's time conflicts.
    out_of_time: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "rejected": self.rejected,
            "errors": self.errors,
            "warnings": self.warnings,
        }

    @property
    def exit_code(self) -> int:
        if self.status == FeedStatus.FAILED:
            return 1  # not the document's fault: the same feed may be sent again
        if self.status in (FeedStatus.UNUSABLE, FeedStatus.STALE):
            return 2
        return 3 if self.rejected else 0


class _Unusable(Exception):
    def __init__(self, reason: str, *, out_of_time: bool = False) -> None:
        super().__init__(reason)
        self.out_of_time = out_of_time


def feed_import(
    *,
    raw: bytes,
    source: str = FeedSource.COMMAND,
    organization: Organization | None = None,
    organization_slug: str | None = None,
) -> ImportSummary:
    """Import one PMS feed document for one organization.

    ``organization`` is the caller's organization when it is already known (the API's token); otherwise
    ``organization_slug`` (the command's ``--org``) or the document's ``organization`` names it.
    """
    started = time.monotonic()
    checksum = hashlib.sha256(raw).hexdigest()
    try:
        document = _parse_document(raw)
    except _Unusable as exc:
        summary = _unusable(str(exc))
        summary.out_of_time = exc.out_of_time
        if organization is not None:
            _record(organization, raw, checksum, source, summary, None, started)
        return summary

    doc_slug = document.get("organization")
    if "organization" in document and not (isinstance(doc_slug, str) and storable(doc_slug)):
        return _unusable("'organization' must be the organization's slug")
    if organization is not None:
        if doc_slug and doc_slug != organization.slug:
            summary = _unusable(f"the feed is for organization {doc_slug!r}, not {organization.slug!r}")
            summary.forbidden = True
            return summary
    else:
        if organization_slug and doc_slug and organization_slug != doc_slug:
            return _unusable(f"the feed is for organization {doc_slug!r} but --org is {organization_slug!r}")
        slug = organization_slug or doc_slug
        if not slug:
            return _unusable("the feed names no organization; pass --org SLUG")
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            return _unusable(f"unknown organization {slug!r}")

    generated_at = document["generated_at"]
    try:
        return _import_locked(organization, document, raw, checksum, source, generated_at, started)
    except DatabaseError as exc:
        # I3: nothing was applied (the transaction rolled back), but the feed is kept, with what went wrong,
        # so it can be audited and replayed. A lost lock race or a database outage is not the feed's fault.
        logger.exception("feed import for %s failed", organization.slug)
        summary = ImportSummary(
            status=FeedStatus.FAILED, reason=f"the import failed and nothing was applied: {exc}"
        )
        summary.errors = [{"pointer": "", "message": summary.reason[:500]}]
        _record(organization, raw, checksum, source, summary, generated_at, started)
        return summary


def _import_locked(
    organization: Organization, document: dict[str, Any], raw: bytes, checksum: str, source: str,
    generated_at: datetime, started: float,
) -> ImportSummary:  # fmt: skip
    with transaction.atomic():
        # One import per organization at a time: the stale check and the writes must see the same state.
        # NO KEY UPDATE (the lock order, docs/architecture.md): rows that merely reference the organization
        # (a payment, a message, a decision) can still be inserted meanwhile, so a writer holding a bill
        # this import must update never waits for the import in turn.
        org = Organization.objects.select_for_update(no_key=True).get(pk=organization.pk)
        previous = (
            FeedImport.objects.filter(
                organization=org, checksum=checksum, status__in=[FeedStatus.APPLIED, FeedStatus.PARTIAL]
            )
            .order_by("-id")
            .first()
        )
        if previous is not None:
            summary = ImportSummary(
                status=FeedStatus.DUPLICATE,
                applied=previous.applied_count,
                rejected=previous.rejected_count,
                errors=previous.errors,
                warnings=[
                    *previous.warnings,
                    {
                        "pointer": "",
                        "message": f"identical to feed #{previous.pk}, already imported; nothing changed",
                    },
                ],
            )
            _record(org, raw, checksum, source, summary, generated_at, started, duplicate_of=previous)
            return summary
        if org.last_feed_generated_at and generated_at < org.last_feed_generated_at:
            summary = ImportSummary(
                status=FeedStatus.STALE,
                reason=(
                    f"stale feed: generated_at {generated_at.isoformat()} is older than the last applied feed "
                    f"({org.last_feed_generated_at.isoformat()})"
                ),
            )
            summary.errors = [{"pointer": "/generated_at", "message": summary.reason}]
            _record(org, raw, checksum, source, summary, generated_at, started)
            return summary

        summary = _apply(org, document, generated_at)
        if org.last_feed_generated_at is None or generated_at > org.last_feed_generated_at:
            org.last_feed_generated_at = generated_at
            org.save(update_fields=["last_feed_generated_at"])
        _record(org, raw, checksum, source, summary, generated_at, started)
    return summary


def _unusable(reason: str) -> ImportSummary:
    return ImportSummary(
        status=FeedStatus.UNUSABLE, reason=reason, errors=[{"pointer": "", "message": reason}]
    )


def _parse_document(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Unusable("the feed is not UTF-8 text") from None
    try:
        document = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise _Unusable(
            f"the feed is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise _Unusable("the feed nests JSON too deeply") from None
    except ValueError as exc:  # an integer of thousands of digits (Python's int conversion limit)
        raise _Unusable(f"the feed holds a number that cannot be read: {exc}") from None
    if not isinstance(document, dict):
        raise _Unusable("the feed must be a JSON object with generated_at, patients and statements")
    if "patients" not in document and "statements" not in document:
        raise _Unusable("the feed has neither 'patients' nor 'statements'")
    for key in ("patients", "statements"):
        if not isinstance(document.get(key, []), list):
            raise _Unusable(f"'{key}' must be a JSON array")
    raw_generated = document.get("generated_at")
    try:
        generated_at = parse_datetime(raw_generated) if isinstance(raw_generated, str) else None
    except ValueError:  # well formed but no such moment: 2026-02-30, 10:61
        generated_at = None
    if generated_at is None or generated_at.tzinfo is None:
        raise _Unusable(
            "'generated_at' must be an ISO 8601 date-time with a time zone, e.g. 2026-11-24T06:00:00Z"
        )
    if generated_at.year < EARLIEST_FEED_YEAR:
        raise _Unusable(f"'generated_at' {raw_generated} is not a real feed date", out_of_time=True)
    # I0: a PMS clock gone wrong must not make every later feed stale.
    if generated_at > timezone.now() + MAX_FEED_AHEAD:
        raise _Unusable(
            f"'generated_at' {raw_generated} is more than a day ahead of now; check the PMS clock",
            out_of_time=True,
        )
    document["generated_at"] = generated_at
    return document


def _record(
    org: Organization,
    raw: bytes,
    checksum: str,
    source: str,
    summary: ImportSummary,
    generated_at: datetime | None,
    started: float,
    duplicate_of: FeedImport | None = None,
) -> None:
    feed = FeedImport.objects.create(
        organization=org,
        source=source,
        generated_at=generated_at,
        import_date=generated_at.astimezone(org.tzinfo).date() if generated_at else None,
        checksum=checksum,
        # As received, but for what a text column cannot hold: invalid UTF-8 and NUL bytes show as U+FFFD.
        raw=raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
        status=summary.status,
        applied_count=summary.applied,
        rejected_count=summary.rejected,
        errors=summary.errors,
        warnings=summary.warnings,
        duplicate_of=duplicate_of,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    summary.feed_import_id = feed.pk


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _apply(org: Organization, document: dict[str, Any], generated_at: datetime) -> ImportSummary:
    # I0: the import date comes from the feed, never from the wall clock.
    import_date = generated_at.astimezone(org.tzinfo).date()
    warnings = Warnings()
    errors: list[tuple[int, int, dict[str, str]]] = []

    def reject(order: int, index: int, exc: RecordError) -> None:
        errors.append((order, index, {"pointer": exc.pointer, "message": exc.message}))

    patients = _valid_patients(org, document.get("patients", []), warnings, reject)
    applied_patients = _write_patients(org, patients, generated_at)
    _follow_demoted_guarantors(org, patients, warnings)
    statements = _valid_statements(org, document.get("statements", []), warnings, reject)
    _write_statements(org, statements, generated_at, import_date)
    _close_campaigns(org, generated_at)
    run_post_import_hooks(org, generated_at)

    errors.sort(key=lambda item: (item[0], item[1]))
    error_list = [item[2] for item in errors]
    return ImportSummary(
        status=FeedStatus.PARTIAL if error_list else FeedStatus.APPLIED,
        applied=applied_patients + len(statements),
        rejected=len(error_list),
        errors=error_list,
        warnings=warnings.as_list(),
    )


def _valid_patients(
    org: Organization, records: list[Any], warnings: Warnings, reject: Any
) -> list[PatientRow]:
    rows: list[PatientRow] = []
    first_seen: dict[str, int] = {}
    for index, record in enumerate(records):
        try:
            row = read_patient(index, record, warnings)
            if row.external_id in first_seen:
                raise RecordError(
                    pointer("patients", index, "id"),
                    f"duplicate patient id {row.external_id!r} (first at /patients/{first_seen[row.external_id]})",
                )
            first_seen[row.external_id] = index
            rows.append(row)
        except RecordError as exc:
            reject(0, index, exc)

    # I4: a dependent needs a guarantor that is in this feed or already known, and is a guarantor.
    feed_guarantors = {row.external_id for row in rows if row.is_guarantor}
    feed_dependents = {row.external_id for row in rows if not row.is_guarantor}
    known = set(
        Patient.objects.filter(organization=org, is_guarantor=True).values_list("external_id", flat=True)
    )
    guarantors = (known - feed_dependents) | feed_guarantors
    valid: list[PatientRow] = []
    for row in rows:
        if row.is_guarantor or row.guarantor_external_id in guarantors:
            valid.append(row)
            continue
        at = pointer("patients", row.index, "guarantor_id")
        if row.guarantor_external_id in feed_dependents:
            message = f"guarantor {row.guarantor_external_id!r} is itself a dependent, not a guarantor"
        else:
            message = f"guarantor {row.guarantor_external_id!r} is not in the feed and not already known"
        reject(0, row.index, RecordError(at, message))
    return valid


PATIENT_COLUMNS = ["organization_id", "external_id", *PATIENT_UPDATE_FIELDS]
ACCOUNT_COLUMNS = ["organization_id", "guarantor_id", *ACCOUNT_UPDATE_FIELDS]
BILL_COLUMNS = ["organization_id", "bill_id", "source", "created_at", *BILL_UPDATE_FIELDS]


def _patient_row(org_id: int, row: PatientRow, generated_at: datetime) -> tuple[Any, ...]:
    # In the order of PATIENT_COLUMNS.
    return (
        org_id, row.external_id, row.guarantor_external_id, row.is_guarantor, row.first_name, row.last_name,
        row.date_of_birth, row.email, row.mobile_phone, row.address_line1, row.address_line2, row.address_city,
        row.address_state, row.address_zip, row.address_status, row.timezone, row.timezone_source,
        # §13.2: a deceased patient is not contacted, by any path that honours do_not_contact (R11, D11, N1).
        row.last_visit_date, row.on_payment_plan, row.open_claims, row.do_not_contact or row.deceased,
        row.pms_sms_opt_out, row.pms_email_opt_out, generated_at, row.home_phone, row.work_phone, row.sms_consent,
        row.preferred_name, row.language, row.care_of, row.deceased,
    )  # fmt: skip


def _guarantor_ids(org: Organization) -> dict[str, int]:
    return dict(Patient.objects.filter(organization=org, is_guarantor=True).values_list("external_id", "pk"))


def _write_patients(org: Organization, rows: list[PatientRow], generated_at: datetime) -> int:
    if not rows:
        return 0
    guarantor_rows = [row for row in rows if row.is_guarantor]
    dependent_rows = [row for row in rows if not row.is_guarantor]
    key = ["organization", "external_id"]
    # K3: the consent flags as they were, for the ledger rows of what this import changes.
    before = consent_before(org)

    # Guarantors first (a guarantor's guarantor is itself), then link each to itself in one UPDATE.
    bulk_upsert(
        Patient,
        [_patient_row(org.pk, row, generated_at) for row in guarantor_rows],
        columns=PATIENT_COLUMNS,
        conflict=key,
        update=PATIENT_UPDATE_FIELDS,
    )
    Patient.objects.filter(organization=org, is_guarantor=True).exclude(guarantor_id=F("pk")).update(
        guarantor_id=F("pk")
    )
    ids = _guarantor_ids(org)
    bulk_upsert(
        Patient,
        [
            (*_patient_row(org.pk, row, generated_at), ids[row.guarantor_external_id])
            for row in dependent_rows
        ],
        columns=[*PATIENT_COLUMNS, "guarantor_id"],
        conflict=key,
        update=[*PATIENT_UPDATE_FIELDS, "guarantor_id"],
    )

    accounts = []
    for row in guarantor_rows:
        balance = row.balance
        total, portion, category = account_figures(balance, balance["insurance_estimate"])
        accounts.append(
            (
                org.pk,
                ids[row.external_id],
                balance["0_30"],
                balance["31_60"],
                balance["61_90"],
                balance["over_90"],
                balance["insurance_estimate"],
                total,
                portion,
                category,
                generated_at,
            )
        )
    bulk_upsert(
        Account, accounts, columns=ACCOUNT_COLUMNS, conflict=["guarantor"], update=ACCOUNT_UPDATE_FIELDS
    )
    consent_report(org=org, before=before, rows=rows, at=generated_at)
    return len(rows)


def _follow_demoted_guarantors(org: Organization, rows: list[PatientRow], warnings: Warnings) -> None:
    """Across feeds, a dependent's guarantor is still a guarantor: when a feed makes a guarantor the dependent
    of another (families merged in the PMS), the dependents it had and that this feed did not mention follow
    it to its new guarantor, and it keeps no account of its own (the family's aging lives on the new
    guarantor). Each move is a warning at the record that demoted it."""
    stale = Patient.objects.filter(organization=org, guarantor__is_guarantor=False).exclude(
        pk=F("guarantor_id")
    )
    moved = list(stale.values_list("guarantor__external_id", "external_id"))
    if not moved:
        Account.objects.filter(guarantor__organization=org, guarantor__is_guarantor=False).delete()
        return
    new_guarantor = Patient.objects.filter(pk=OuterRef("guarantor_id"))
    stale.update(
        guarantor_id=Subquery(new_guarantor.values("guarantor_id")[:1]),
        guarantor_external_id=Subquery(new_guarantor.values("guarantor_external_id")[:1]),
    )
    Account.objects.filter(guarantor__organization=org, guarantor__is_guarantor=False).delete()
    index_of = {row.external_id: row.index for row in rows}
    by_old: dict[str, list[str]] = {}
    for old, dependent in moved:
        by_old.setdefault(old, []).append(dependent)
    for old, dependents in sorted(by_old.items()):
        at = pointer("patients", index_of[old], "guarantor_id") if old in index_of else ""
        warnings.add(at, f"{old!r} is now a dependent; its dependents {', '.join(sorted(dependents))} follow it "
                         "to its new guarantor")  # fmt: skip


def _valid_statements(
    org: Organization, records: list[Any], warnings: Warnings, reject: Any
) -> list[tuple[StatementRow, int, int | None, Any]]:
    # Every patient by PMS id: (pk, its guarantor's pk, its guarantor's PMS id).
    family: dict[str, tuple[int, int, str]] = {
        external_id: (pk, guarantor_pk, guarantor_external_id)
        for external_id, pk, guarantor_pk, guarantor_external_id in Patient.objects.filter(
            organization=org, guarantor__isnull=False
        ).values_list("external_id", "pk", "guarantor_id", "guarantor_external_id")
    }
    rows: list[tuple[int, StatementRow | RecordError]] = []
    for index, record in enumerate(records):
        try:
            rows.append((index, read_statement(index, record, warnings)))
        except RecordError as exc:
            rows.append((index, exc))
    existing: dict[str, Any] = {}
    bill_ids = [row.bill_id for _, row in rows if isinstance(row, StatementRow)]
    for chunk in _chunks(bill_ids, BATCH):
        found = Bill.objects.filter(organization=org, bill_id__in=chunk).values_list(
            "bill_id", "source", "created_at", "effective_created_date", "generation", "state", "ended_at",
            "amount_due", "statement_date", "due_date", "guarantor_id", "dunning_status", "next_dunning_date",
            "amount_changed", named=True,
        )  # fmt: skip
        for bill in found:
            existing[bill.bill_id] = bill

    valid: list[tuple[StatementRow, int, int | None, Any]] = []
    first_seen: dict[str, int] = {}
    for index, row in rows:
        try:
            if isinstance(row, RecordError):
                raise row
            if row.bill_id in first_seen:
                raise RecordError(
                    pointer("statements", index, "bill_id"),
                    f"duplicate bill_id {row.bill_id!r} (first at /statements/{first_seen[row.bill_id]})",
                )
            guarantor_pk, patient_pk = _statement_family(index, row, family, warnings)
            old = existing.get(row.bill_id)
            if old is not None and old.source != BillSource.STATEMENT:
                raise RecordError(
                    pointer("statements", index, "bill_id"),
                    f"bill_id {row.bill_id!r} belongs to a payment request",
                )
            first_seen[row.bill_id] = index
            valid.append((row, guarantor_pk, patient_pk, old))
        except RecordError as exc:
            reject(1, index, exc)
    return valid


def _statement_family(
    index: int, row: StatementRow, family: dict[str, tuple[int, int, str]], warnings: Warnings
) -> tuple[int, int | None]:
    """(guarantor pk, patient pk) of a statement. I1a: a statement that names a dependent for its guarantor
    (a walkout or single-patient statement) belongs to the dependent's guarantor and remembers the dependent;
    §13.2 ``patient_id`` names the patient outright. A patient outside the guarantor's family, or unknown, is
    a warning and not remembered; the bill is kept."""
    named = family.get(row.guarantor_external_id)
    if named is None:
        raise RecordError(
            pointer("statements", index, "guarantor_id"),
            f"guarantor {row.guarantor_external_id!r} is not a known patient",
        )
    named_pk, guarantor_pk, guarantor_external_id = named
    patient_pk: int | None = None
    if named_pk != guarantor_pk:
        patient_pk = named_pk
        warnings.add(
            pointer("statements", index, "guarantor_id"),
            f"{row.guarantor_external_id!r} is a dependent: the statement belongs to its guarantor "
            f"{guarantor_external_id!r} and is remembered as {row.guarantor_external_id!r}'s",
        )
    if row.patient_external_id:
        patient = family.get(row.patient_external_id)
        if patient is None:
            warnings.add(
                pointer("statements", index, "patient_id"),
                f"patient {row.patient_external_id!r} is not known: the statement is kept without it",
            )
        elif patient[1] != guarantor_pk:
            warnings.add(
                pointer("statements", index, "patient_id"),
                f"patient {row.patient_external_id!r} is not in guarantor {guarantor_external_id!r}'s family: "
                "the statement is kept without it",
            )
        else:
            patient_pk = patient[0]
    return guarantor_pk, patient_pk


def _write_statements(
    org: Organization, rows: list[tuple[StatementRow, int, int | None, Any]], generated_at: datetime,
    import_date: date,
) -> None:  # fmt: skip
    policy = policy_for(org)
    bills = [
        _statement_bill(org.pk, row, pk, patient_pk, old, generated_at, import_date, policy)
        for row, pk, patient_pk, old in rows
    ]
    bulk_upsert(
        Bill, bills, columns=BILL_COLUMNS, conflict=["organization", "bill_id"], update=BILL_UPDATE_FIELDS
    )


def _statement_bill(
    org_id: int, row: StatementRow, guarantor_pk: int, patient_pk: int | None, old: Any, generated_at: datetime,
    import_date: date, policy: BillPolicy,
) -> tuple[Any, ...]:  # fmt: skip
    """The bill row after this statement: I6 (the latest amount) and the dunning clock (D7-D10)."""
    clock = bill_clock(
        policy=policy, old=old, statement_date=row.statement_date, amount_due=row.amount_due, due_date=row.due_date,
        guarantor_id=guarantor_pk, dunning_status=row.dunning_status, reset_bill=row.reset_bill, import_date=import_date,
    )  # fmt: skip
    created_at = generated_at if old is None else old.created_at
    ended_at = None if old is None or clock.reset else old.ended_at
    # D10: a flagged bill update is decided by the run that follows the import, not at the next step's date.
    recompute = old is None or clock.recompute_next or clock.amount_changed
    next_dunning = None if recompute else old.next_dunning_date
    state = clock.state
    if state in BILL_OWING_STATES and row.amount_due <= 0:
        state, ended_at = BillState.PAID, generated_at
    # In the order of BILL_COLUMNS.
    return (
        org_id, row.bill_id, BillSource.STATEMENT, created_at, guarantor_pk, row.statement_date, row.due_date,
        row.amount_due, clock.effective_created_date, clock.generation, row.dunning_status, str(state),
        generated_at, ended_at, next_dunning, clock.amount_changed, patient_pk, row.sent_by_pms,
    )  # fmt: skip


def _close_campaigns(org: Organization, generated_at: datetime) -> None:
    """I6: a request campaign follows the guarantor's patient portion; <= 0 pays it; a plan closes all. A
    completed campaign (past its final notice, D11) still owes, so it follows the PMS too."""
    active = Bill.objects.filter(organization=org, state__in=BILL_OWING_STATES)
    portion = Account.objects.filter(guarantor_id=OuterRef("guarantor_id")).values("patient_portion")[:1]
    active.filter(source=BillSource.REQUEST).update(amount_due=Coalesce(Subquery(portion), F("amount_due")))
    active.filter(amount_due__lte=0).update(state=BillState.PAID, ended_at=generated_at)
    # §13.2: a deceased guarantor's campaigns all close, with the reason shown to staff.
    active.filter(guarantor__deceased=True).update(
        state=BillState.CLOSED, ended_at=generated_at, closed_reason=ClosedReason.DECEASED
    )
    active.filter(guarantor__on_payment_plan=True).update(state=BillState.CLOSED, ended_at=generated_at)
