"""The after-final worklist (SPEC §13.1): what staff do once a bill's schedule has run out.

A bill the engine has marked ``completed`` (D11: its last step decided) that still owes money is on its
organization's worklist (A1), oldest final notice first. Staff record one outcome per bill (A2, audited T5):
a promise to pay (a snooze through the payments service; the bill is back the day after the promised date
if still owed), a payment plan set up in the PMS (the bill stays until a feed closes it), restarting the
reminders (a D9 reset), sending it to collections or writing it off (both close the bill with a reason).

Selectors read; ``after_final_record`` and ``collections_export_csv`` are the only writers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from django.db import transaction
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from dunning.models import (
    OUTCOME_NOTE_MAX_LENGTH,
    AfterFinalOutcome,
    AfterFinalOutcomeKind,
    DunningDecision,
    SkipReason,
)
from notifications.models import Channel, Kind, Message, State
from payments.models import PaymentRequest
from payments.services import SnoozeError, snooze_create
from practices.csv_export import csv_text
from practices.importer.policy import BillPolicy, bill_clock
from practices.models import (
    CENTS,
    Bill,
    BillSource,
    BillState,
    ClosedReason,
    Organization,
    Role,
)
from practices.services import audit_record
from practices.tenancy import user_has_role
from practices.timezones import organization_today

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

__all__ = [
    "COLLECTIONS_COLUMNS",
    "AfterFinalError",
    "OutcomeNotAllowed",
    "after_final_promised",
    "after_final_record",
    "after_final_refusal",
    "after_final_rows",
    "after_final_worklist",
    "collections_export_csv",
    "collections_export_rows",
    "worklist_rows",
]

# A final notice "left us" once the provider (or the mail, for paper) took it.
LEFT_STATES = (State.SENT, State.DELIVERED)
# A promise further out than this is a typo more often than a plan.
PROMISE_HORIZON = timedelta(days=365)
# Write-off forgives money the practice is owed: an accounting decision (T2, docs/decisions.md).
BILLING_MANAGER_OUTCOMES = frozenset({AfterFinalOutcomeKind.WRITTEN_OFF})
CLOSING = {
    AfterFinalOutcomeKind.COLLECTIONS: ClosedReason.COLLECTIONS,
    AfterFinalOutcomeKind.WRITTEN_OFF: ClosedReason.WRITTEN_OFF,
}
COLLECTIONS_COLUMNS = (
    "guarantor_id", "last_name", "first_name", "address_line1", "address_line2", "city", "state", "zip",
    "home_phone", "work_phone", "mobile_phone", "email", "bill_id", "amount_due", "aging_0_30", "aging_31_60",
    "aging_61_90", "aging_over_90", "last_statement_date", "final_notice_date", "placed_date",
)  # fmt: skip


class AfterFinalError(ValueError):
    """An outcome that cannot be recorded; the message says why, in the front desk's words."""


class OutcomeNotAllowed(AfterFinalError):
    """The user's role does not allow this outcome (T2)."""


@dataclass(frozen=True)
class FinalNotice:
    """One channel of a bill's final notice as the worklist shows it."""

    channel: str
    channel_label: str
    status: str
    left: bool


class FinalAnnotations(TypedDict):
    """What ``_annotated`` adds to a bill (the current generation's final notice and latest outcome)."""

    final_left_at: datetime | None
    final_decided_at: datetime | None
    final_date: datetime | None
    latest_outcome: str | None
    latest_promise_date: date | None
    latest_outcome_at: datetime | None


if TYPE_CHECKING:
    # Type checking only: Python 3.11 cannot subscript this alias at runtime.
    WorklistBill = WithAnnotations[Bill, FinalAnnotations]


@dataclass(frozen=True)
class WorklistRow:
    """A bill of the worklist or the Promised list with its final notice per channel and its outcome's label."""

    bill: WorklistBill
    final_notices: list[FinalNotice]
    outcome_label: str

    @property
    def back_on(self) -> date | None:
        """When a promised bill is back on the worklist if still owed: the day after the promised date."""
        promised = self.bill.latest_promise_date
        return promised + timedelta(days=1) if promised else None


# --- reads ---------------------------------------------------------------------------------------------


def _final_messages() -> QuerySet[Message]:
    return Message.objects.filter(bill=OuterRef("pk"), generation=OuterRef("generation"), kind=Kind.FINAL)


def _annotated(queryset: QuerySet[Bill]) -> QuerySet[WorklistBill]:
    """Bills with their final notice's moments and their latest outcome, both of the current generation.

    ``final_left_at``: the first moment a final notice left us (sent or delivered). ``final_decided_at``: when
    the engine decided the final step (sent or skipped). ``final_date`` orders the list: the first of those
    that exists, else the moment the bill was completed."""
    left = (
        _final_messages()
        .filter(state__in=LEFT_STATES)
        .annotate(left_at=Coalesce("sent_at", "delivered_at", "updated_at"))
        .order_by("left_at")
        .values("left_at")[:1]
    )
    decided = (
        DunningDecision.objects.filter(
            bill=OuterRef("pk"), generation=OuterRef("generation"), kind=Kind.FINAL
        )
        .exclude(reason=SkipReason.CLAIMS_PENDING)  # K6: a hold is not a decision of the step
        .order_by("created_at")
        .values("created_at")[:1]
    )
    latest = AfterFinalOutcome.objects.filter(
        bill=OuterRef("pk"), generation=OuterRef("generation")
    ).order_by("-created_at", "-pk")
    return queryset.annotate(
        final_left_at=Subquery(left),
        final_decided_at=Subquery(decided),
        final_date=Coalesce("final_left_at", "final_decided_at", "ended_at"),
        latest_outcome=Subquery(latest.values("outcome")[:1]),
        latest_promise_date=Subquery(latest.values("promise_date")[:1]),
        latest_outcome_at=Subquery(latest.values("created_at")[:1]),
    )


def _completed_owing(organization: Organization) -> QuerySet[WorklistBill]:
    # Served by the partial index bill_completed_by_org.
    bills = Bill.objects.filter(organization=organization, state=BillState.COMPLETED, amount_due__gt=0)
    return _annotated(bills).select_related("guarantor", "guarantor__account")


def _promise_pending(on: date) -> Q:
    return Q(latest_outcome=AfterFinalOutcomeKind.PROMISE_TO_PAY, latest_promise_date__gte=on)


def _not_promised(on: date) -> Q:
    # Spelled out rather than ~_promise_pending: NOT over a NULL subquery (no outcome yet) is NULL in SQL.
    return (
        Q(latest_outcome__isnull=True)
        | ~Q(latest_outcome=AfterFinalOutcomeKind.PROMISE_TO_PAY)
        | Q(latest_promise_date__lt=on)
    )


def after_final_worklist(*, organization: Organization, on: date) -> QuerySet[WorklistBill]:
    """A1: the organization's completed bills with an amount due > 0 on ``on``, oldest final notice first
    (then by bill id), each with its guarantor and account. A bill whose latest outcome is a promise to pay
    dated ``on`` or later waits on the Promised list; it is back here the day after the promised date."""
    return (
        _completed_owing(organization)
        .filter(_not_promised(on))
        .order_by(F("final_date").asc(nulls_last=True), "bill_id", "pk")
    )


def after_final_promised(*, organization: Organization, on: date) -> QuerySet[WorklistBill]:
    """The completed, owing bills waiting for a promise to pay still running on ``on``, soonest date first."""
    return (
        _completed_owing(organization)
        .filter(_promise_pending(on))
        .order_by("latest_promise_date", "bill_id", "pk")
    )


def worklist_rows(*, bills: Iterable[WorklistBill]) -> list[WorklistRow]:
    """Each bill with its ``final_notices`` (one ``FinalNotice`` per channel of the current generation's final
    step, from the engine's decisions and their messages) and its ``outcome_label``; one query for them all."""
    bills = list(bills)
    generation = {bill.pk: bill.generation for bill in bills}
    notices: dict[int, list[FinalNotice]] = {pk: [] for pk in generation}
    channels = dict(Channel.choices)
    states = dict(State.choices)
    reasons = dict(SkipReason.choices)
    rows = (
        DunningDecision.objects.filter(bill_id__in=list(generation), kind=Kind.FINAL)
        .exclude(reason=SkipReason.CLAIMS_PENDING)  # K6: the step's own decision came once the claims settled
        .order_by("bill_id", "channel")
        .values_list("bill_id", "generation", "channel", "action", "reason", "message__state")
    )
    for bill_pk, gen, channel, action, reason, state in rows:
        if generation.get(bill_pk) != gen:
            continue
        if state:
            status = states.get(state, state)
        else:
            status = f"Skipped: {reasons.get(reason, reason)}" if action == "skip" else "Not sent"
        notices[bill_pk].append(
            FinalNotice(channel, str(channels.get(channel, channel)), str(status), state in LEFT_STATES)
        )
    labels = dict(AfterFinalOutcomeKind.choices)
    return [
        WorklistRow(
            bill=bill,
            final_notices=notices[bill.pk],
            outcome_label=str(labels[bill.latest_outcome]) if bill.latest_outcome else "",
        )
        for bill in bills
    ]


def _money(amount: Decimal) -> str:
    return str(amount.quantize(CENTS))


def after_final_rows(*, organization: Organization, on: date) -> list[dict[str, Any]]:
    """The ``after_final --json`` document (SPEC §10), in worklist order: ``guarantor_id``, ``bill_id``,
    ``amount_due`` (2 decimals), ``final_sent_at`` (when the first final notice left us, ISO, or null when
    none has) and ``outcome`` (the latest outcome recorded on the bill's current generation, or null)."""
    return [
        {
            "guarantor_id": bill.guarantor.external_id,
            "bill_id": bill.bill_id,
            "amount_due": _money(bill.amount_due),
            "final_sent_at": _iso(bill.final_left_at),
            "outcome": bill.latest_outcome,
        }
        for bill in after_final_worklist(organization=organization, on=on)
    ]


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def collections_export_rows(*, organization: Organization, since: date | None = None) -> list[dict[str, Any]]:
    """The bills staff sent to collections (A2), in ``COLLECTIONS_COLUMNS`` for the agency: the guarantor's
    id, name, mailing address, phones and email, the bill and its amount, the family's aging buckets, the
    last statement date (the PMS statement date; a request's send date), the final-notice date and the date
    it was placed; dates in the organization's zone; US phones as ten digits. No clinical data, no date of
    birth. ``since`` keeps the bills placed on or after that date. Oldest placement first."""
    zone = organization.tzinfo
    placed = AfterFinalOutcome.objects.filter(bill=OuterRef("pk"), outcome=AfterFinalOutcomeKind.COLLECTIONS)
    bills = _annotated(
        Bill.objects.filter(
            organization=organization, state=BillState.CLOSED, closed_reason=ClosedReason.COLLECTIONS
        )
    ).annotate(
        placed_at=Subquery(placed.order_by("-created_at", "-pk").values("created_at")[:1]),
        request_date=Subquery(PaymentRequest.objects.filter(bill=OuterRef("pk")).values("request_date")[:1]),
    )
    if since is not None:
        bills = bills.filter(placed_at__gte=datetime.combine(since, time.min, tzinfo=zone))
    rows = []
    for bill in bills.select_related("guarantor", "guarantor__account").order_by("placed_at", "bill_id"):
        patient = bill.guarantor
        account = getattr(patient, "account", None)
        buckets = (
            (account.bucket_0_30, account.bucket_31_60, account.bucket_61_90, account.bucket_over_90)
            if account is not None
            else (None, None, None, None)
        )
        last_statement = bill.statement_date
        if last_statement is None and bill.source == BillSource.REQUEST:
            last_statement = bill.request_date
        final_date = bill.final_left_at or bill.final_decided_at
        values = (
            patient.external_id, patient.last_name, patient.first_name, patient.address_line1,
            patient.address_line2, patient.address_city, patient.address_state, patient.address_zip,
            _agency_phone(patient.home_phone), _agency_phone(patient.work_phone),
            _agency_phone(patient.mobile_phone), patient.email, bill.bill_id,
            _money(bill.amount_due), *(_money(b) if b is not None else "" for b in buckets),
            last_statement.isoformat() if last_statement else "",
            final_date.astimezone(zone).date().isoformat() if final_date else "",
            bill.placed_at.astimezone(zone).date().isoformat() if bill.placed_at else "",
        )  # fmt: skip
        rows.append(dict(zip(COLLECTIONS_COLUMNS, values, strict=True)))
    return rows


def _agency_phone(e164: str) -> str:
    """A US number as the ten digits collection agencies take; others stay E.164 (the CSV writer then
    guards the leading ``+``, which a spreadsheet would read as a formula)."""
    return e164[2:] if len(e164) == 12 and e164.startswith("+1") else e164


# --- writes --------------------------------------------------------------------------------------------


def collections_export_csv(
    *, organization: Organization, user: Any, since: date | None = None, actor_label: str = ""
) -> str:
    """The collections export as CSV text (the one CSV writer: formula cells neutralised); the export of
    contact details is audited with its row count (T5)."""
    rows = collections_export_rows(organization=organization, since=since)
    audit_record(
        organization=organization, actor=user, actor_label=actor_label, action="after_final.collections_export",
        changes={"rows": ["", str(len(rows))], "since": ["", since.isoformat() if since else ""]},
    )  # fmt: skip
    return csv_text(COLLECTIONS_COLUMNS, rows)


def after_final_refusal(*, bill: Bill) -> str:
    """Why an outcome would be refused for ``bill`` as it was read (empty when it is on the worklist): what a
    confirmation page checks before asking. ``after_final_record`` checks again on the locked row."""
    if bill.state == BillState.COMPLETED and bill.amount_due > 0:
        return ""
    return _why_not_on_list(bill)


def _why_not_on_list(bill: Bill) -> str:
    where = f"Bill {bill.bill_id} is no longer on the after-final worklist"
    if bill.state == BillState.PAID:
        return f"{where}: it has been paid."
    if bill.state == BillState.CLOSED:
        reason = {
            ClosedReason.COLLECTIONS: "it was sent to collections",
            ClosedReason.WRITTEN_OFF: "it was written off",
            ClosedReason.DECEASED: "the guarantor is deceased (from the PMS)",
        }.get(ClosedReason(bill.closed_reason), "it was closed (a payment plan in the PMS)")
        return f"{where}: {reason}."
    if bill.state == BillState.ACTIVE:
        return f"{where}: its reminders are running (it is active again)."
    return f"{where}: nothing is owed on it (amount due ${bill.amount_due:,.2f})."


def _check(
    *, outcome: str, user: Any, organization: Organization, promise_date: date | None, note: str, today: date
) -> AfterFinalOutcomeKind:
    try:
        kind = AfterFinalOutcomeKind(outcome)
    except ValueError:
        raise AfterFinalError(
            f"Unknown outcome {outcome!r}; expected one of {', '.join(AfterFinalOutcomeKind.values)}."
        ) from None
    if not user_has_role(user, Role.FRONT_DESK, organization):
        raise OutcomeNotAllowed("Only the practice's staff can record an outcome on this worklist.")
    if kind in BILLING_MANAGER_OUTCOMES and not user_has_role(user, Role.BILLING_MANAGER, organization):
        raise OutcomeNotAllowed("Only a billing manager can write off a balance.")
    if len(note) > OUTCOME_NOTE_MAX_LENGTH:
        raise AfterFinalError(f"The note is longer than {OUTCOME_NOTE_MAX_LENGTH} characters.")
    if kind == AfterFinalOutcomeKind.PROMISE_TO_PAY:
        if promise_date is None:
            raise AfterFinalError("A promise to pay needs the date the guarantor promised to pay by.")
        if promise_date < today:
            raise AfterFinalError(
                f"The promise date {promise_date.isoformat()} is in the past (today is {today.isoformat()})."
            )
        if promise_date > today + PROMISE_HORIZON:
            raise AfterFinalError("The promise date is more than a year away; check the year.")
    elif promise_date is not None:
        raise AfterFinalError("Only a promise to pay takes a date.")
    return kind


def after_final_record(
    *,
    bill: Bill,
    outcome: str,
    user: Any,
    promise_date: date | None = None,
    note: str = "",
    at: datetime | None = None,
) -> AfterFinalOutcome:
    """A2: record ``outcome`` for a bill on the after-final worklist and apply it; audited (T5).

    ``promise_to_pay`` (needs ``promise_date``, today or later): the guarantor is snoozed through the payments
    snooze service until the day after that date (no requests or dunning meanwhile) and the bill is back on
    the worklist then if still owed. ``payment_plan``: recorded only; the bill stays listed until the next feed
    puts the guarantor on a plan and closes it (I6). ``restart_reminders``: a reset (D9, the importer's own
    ``bill_clock``): generation + 1, the clock at the organization's today, the bill ``active`` with its next
    due date to be computed, so the next run starts the schedule again from step one. ``collections`` and
    ``written_off``: the bill is ``closed`` with that reason and leaves every list.

    Refused with ``AfterFinalError`` (nothing changes) for a bill that is no longer completed and owing, and
    with ``OutcomeNotAllowed`` for a user without the role: front desk and up, billing manager for a
    write-off. The organization's row is locked first, then the bill (the lock order of
    docs/architecture.md), so an import that pays or closes the bill meanwhile is seen."""
    moment = at or timezone.now()
    organization = bill.organization
    today = organization_today(organization, at=moment)
    note = note.strip()
    kind = _check(
        outcome=outcome,
        user=user,
        organization=organization,
        promise_date=promise_date,
        note=note,
        today=today,
    )
    created_by = user if getattr(user, "pk", None) else None
    with transaction.atomic():
        list(Organization.objects.select_for_update(no_key=True).filter(pk=organization.pk).values_list("pk"))
        locked = Bill.objects.select_for_update(no_key=True).select_related("guarantor").get(pk=bill.pk)
        if locked.state != BillState.COMPLETED or locked.amount_due <= 0:
            raise AfterFinalError(_why_not_on_list(locked))
        generation = locked.generation
        before: dict[str, object] = {"state": locked.state, "generation": generation}
        changes: dict[str, list[str]] = {"bill": ["", locked.bill_id], "outcome": ["", str(kind)]}
        snooze = None
        updates: dict[str, Any] = {}
        if kind == AfterFinalOutcomeKind.PROMISE_TO_PAY:
            assert promise_date is not None
            try:
                (snooze,) = snooze_create(
                    organization=organization, guarantor_ids=[locked.guarantor.external_id],
                    until=promise_date + timedelta(days=1), reason=f"Promise to pay by {_day(promise_date)}",
                    user=user, today=today,
                )  # fmt: skip
            except SnoozeError as exc:
                raise AfterFinalError(f"The guarantor could not be snoozed: {exc}.") from None
            changes["promise_date"] = ["", promise_date.isoformat()]
        elif kind == AfterFinalOutcomeKind.RESTART_REMINDERS:
            updates = _restart(locked, today=today)
        elif kind in CLOSING:
            updates = {"state": BillState.CLOSED, "closed_reason": CLOSING[kind], "ended_at": moment}
        if updates:
            Bill.objects.filter(pk=locked.pk).update(**updates)
            for name, value in updates.items():
                setattr(locked, name, value)
            for name, old in before.items():
                if getattr(locked, name) != old:
                    changes[name] = [str(old), str(getattr(locked, name))]
            if "closed_reason" in updates:
                changes["closed_reason"] = ["", str(updates["closed_reason"])]
        if note:
            changes["note"] = ["", note]
        recorded = AfterFinalOutcome.objects.create(
            organization=organization, bill=locked, generation=generation, outcome=kind,
            promise_date=promise_date if kind == AfterFinalOutcomeKind.PROMISE_TO_PAY else None, snooze=snooze,
            note=note, created_by=created_by, created_at=moment,
        )  # fmt: skip
        audit_record(
            organization=organization, actor=user, action=f"after_final.{kind}", obj=locked, changes=changes
        )
    return recorded


def _restart(bill: Bill, *, today: date) -> dict[str, Any]:
    """The bill's fields after a staff reset: the importer's D9 rule (``bill_clock`` with a reset asked for),
    with the organization's today as the import date."""
    if bill.source == BillSource.REQUEST:
        other = (
            Bill.objects.filter(
                guarantor_id=bill.guarantor_id, source=BillSource.REQUEST, state=BillState.ACTIVE
            )
            .exclude(pk=bill.pk)
            .values_list("bill_id", flat=True)
            .first()
        )
        if other is not None:
            # bill_one_active_request: a guarantor has one running request campaign.
            raise AfterFinalError(
                f"Reminders cannot restart on {bill.bill_id}: the guarantor already has a running payment "
                f"request ({other})."
            )
    clock = bill_clock(
        policy=BillPolicy(reset_flag=True), old=bill, statement_date=bill.statement_date,
        amount_due=bill.amount_due, due_date=bill.due_date, guarantor_id=bill.guarantor_id,
        dunning_status=bill.dunning_status, reset_bill=True, import_date=today,
    )  # fmt: skip
    assert clock.reset
    return {
        "generation": clock.generation,
        "effective_created_date": clock.effective_created_date,
        "state": clock.state,
        "amount_changed": clock.amount_changed,
        "next_dunning_date": None,
        "ended_at": None,
    }


def _day(value: date) -> str:
    return f"{value:%b} {value.day}, {value:%Y}"
