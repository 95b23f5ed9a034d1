"""The nightly paper batch (SPEC L1): claim an organization's pending paper messages, render one PDF and a
CSV manifest, and mark the batch mailed when ops hand it to the mail house.

Claim and render are two steps. The claim is one short transaction: lock the pending rows
(``skip_locked``, so two runs never take the same message), create the ``LetterBatch`` without files and
move the messages to ``sending`` with ``batch`` set by a conditional UPDATE. Rendering (~60 s for 10 000
letters) then runs outside any transaction: holding row locks that long would block other writers, and on
SQLite (IMMEDIATE transactions) it would hold the whole database's write lock.

A crash while rendering leaves the batch without files and its messages ``sending`` with the batch set:
visible in the admin ("not rendered" filter), never mailable (``letter_batch_mark_mailed`` refuses a
batch without a PDF), and not touched by the outbox sweeper (electronic messages only). The next run for
the organization (the nightly job or ``render_letters``) renders such a batch again once it is older than
``RENDER_LEASE``. A batch's messages are fixed at claim time and the output is deterministic, so two
processes rendering the same batch only waste time: the first to store its files wins (a conditional
UPDATE on an empty ``pdf``) and the other deletes its copies.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from notifications.frequency import ContactLog, parse_frequency_cap
from notifications.letters.render import AGING_BUCKETS, Letter, LetterTooLong, PostalAddress, Practice, render
from notifications.models import (
    BatchState,
    Channel,
    LetterBatch,
    Message,
    NotificationSettings,
    Reason,
    State,
)
from notifications.paylinks import pay_url, with_pay_url
from notifications.templating import greeting_name, template_for
from practices.csv_export import csv_text
from practices.models import BILL_ENDED_STATES, Account, Organization, Patient
from practices.phones import phone_display
from practices.services import audit_record
from practices.timezones import organization_today

logger = logging.getLogger(__name__)

# One PDF stays below ~25 MB and about a minute of rendering; more pending letters make several batches.
MAX_LETTERS_PER_BATCH = 10_000
# A batch without files older than this is taken to be abandoned by a crashed run and rendered again.
RENDER_LEASE = timedelta(minutes=10)

MANIFEST_HEADER = (
    "page",
    "message_id",
    "patient_external_id",
    "guarantor_external_id",
    "recipient_name",
    "city",
    "state",
    "zip",
    "kind",
    "amount_due",
)
_CENT = Decimal("0.01")
_ACCOUNT_BUCKETS = {key: f"bucket_{key}" for key, _ in AGING_BUCKETS}


class LetterBatchFailed(RuntimeError):
    """Raised by the nightly job after every organization was tried, naming the ones whose batch failed."""


@dataclass(frozen=True, slots=True)
class _Entry:
    message: Message
    letter: Letter


def letter_batch_render(
    *,
    organization: Organization,
    batch_date: date | None = None,
    now: datetime | None = None,
    limit: int = MAX_LETTERS_PER_BATCH,
) -> LetterBatch | None:
    """Render the organization's pending paper messages (at most ``limit``) into one new batch (L1).

    First finishes any batch of the organization abandoned by a crashed run (see the module docstring).
    Returns the batch made from this call's claim; when nothing was pending, the abandoned batch it
    finished, if any; otherwise None. ``batch_date`` defaults to the organization's today.
    """
    moment = now or timezone.now()
    day = batch_date or organization_today(organization, at=moment)
    finished = None
    for abandoned in _abandoned_batches(organization=organization):
        logger.warning("letter batch %s was left without files; rendering it again", abandoned.pk)
        finished = _batch_render_files(batch=abandoned, moment=moment) or finished
    batch = _batch_claim(organization=organization, day=day, moment=moment, limit=limit)
    if batch is None:
        return finished
    return _batch_render_files(batch=batch, moment=moment)


def letter_batches_render_all(*, now: datetime | None = None) -> list[int]:
    """The nightly job: every organization with pending paper messages (or an abandoned batch) gets its
    batches. Returns the ids of the batches rendered. One organization's failure does not stop the others;
    it is logged and raised as ``LetterBatchFailed`` at the end."""
    moment = now or timezone.now()
    pending = Message.objects.filter(
        Q(state=State.PENDING) | Q(state=State.SCHEDULED, scheduled_for__lte=moment), channel=Channel.PAPER
    ).values("organization_id")
    abandoned = _abandoned_filter().values("organization_id")
    organizations = Organization.objects.filter(Q(pk__in=pending) | Q(pk__in=abandoned)).order_by("pk")
    rendered: list[int] = []
    failed: list[str] = []
    for organization in organizations:
        try:
            # Each pass claims only pending rows and leaves none of them pending, so this ends.
            while batch := letter_batch_render(organization=organization, now=moment):
                rendered.append(batch.pk)
        except Exception:
            logger.exception("letter batch for %s failed", organization.slug)
            failed.append(organization.slug)
    if failed:
        raise LetterBatchFailed(f"letter batches failed for: {', '.join(failed)}")
    return rendered


def letter_batch_mark_mailed(*, batch: LetterBatch, user: Any, now: datetime | None = None) -> int:
    """Ops handed the batch to the mail house: the batch becomes ``mailed`` and its ``sending`` messages
    ``sent`` (L1), audited (T5). Returns the number of messages marked sent; 0 when the batch was already
    mailed or has no PDF yet (nothing changes then)."""
    moment = now or timezone.now()
    with transaction.atomic():
        took = (
            LetterBatch.objects.filter(pk=batch.pk, state=BatchState.RENDERED)
            .exclude(pdf="")
            .update(state=BatchState.MAILED, mailed_at=moment, mailed_by=user)
        )
        if not took:
            return 0
        sent = Message.objects.filter(batch=batch, state=State.SENDING).update(
            state=State.SENT, sent_at=moment, updated_at=moment
        )
        audit_record(
            organization=batch.organization,
            actor=user,
            action="letter_batch.mark_mailed",
            obj=batch,
            changes={"state": [BatchState.RENDERED.value, BatchState.MAILED.value], "messages_sent": sent},
        )
    batch.refresh_from_db()
    return sent


# --- claim ------------------------------------------------------------------------------------------------


def _abandoned_filter() -> QuerySet[LetterBatch]:
    return LetterBatch.objects.filter(
        state=BatchState.RENDERED, pdf="", created_at__lt=timezone.now() - RENDER_LEASE
    )


def _abandoned_batches(*, organization: Organization) -> list[LetterBatch]:
    return list(_abandoned_filter().filter(organization=organization).order_by("pk"))


def _batch_claim(
    *, organization: Organization, day: date, moment: datetime, limit: int
) -> LetterBatch | None:
    with transaction.atomic():
        # K2: letters the frequency cap held go with the first batch after they fit.
        Message.objects.filter(
            organization=organization, channel=Channel.PAPER, state=State.SCHEDULED, scheduled_for__lte=moment
        ).update(state=State.PENDING, reason="", hold_detail="", updated_at=moment)
        ids = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(organization=organization, channel=Channel.PAPER, state=State.PENDING)
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return None
        # N1: the re-check before a message leaves us; for paper the mail house is the provider.
        mine = Message.objects.filter(pk__in=ids, state=State.PENDING)
        mine.filter(bill__state__in=BILL_ENDED_STATES).update(
            state=State.CANCELLED, reason=Reason.BILL_NOT_ACTIVE, updated_at=moment
        )
        mine.filter(generation__lt=F("bill__generation")).update(
            state=State.CANCELLED, reason=Reason.OLDER_GENERATION, updated_at=moment
        )
        mine.filter(patient__do_not_contact=True).update(
            state=State.CANCELLED, reason=Reason.DO_NOT_CONTACT, updated_at=moment
        )
        _hold_over_cap(mine, organization=organization, moment=moment)
        batch = LetterBatch.objects.create(organization=organization, batch_date=day)
        claimed = mine.update(state=State.SENDING, batch=batch, sending_started_at=moment, updated_at=moment)
        if not claimed:
            batch.delete()
            return None
        batch.letter_count = claimed
        batch.save(update_fields=["letter_count"])
    return batch


def _hold_over_cap(mine: QuerySet[Message], *, organization: Organization, moment: datetime) -> None:
    """K2: a letter that would exceed the frequency cap of its guarantor or household is held (``scheduled``, with
    the reason) to the first moment it fits, like a text or an email; never dropped. Two queries for the batch."""
    raw = NotificationSettings.objects.filter(organization=organization).values_list(
        "frequency_cap", flat=True
    )
    cap = parse_frequency_cap(raw.first() or "none")
    if cap is None:
        return
    letters = list(mine.select_related("patient").order_by("pk"))
    contacts = ContactLog.read(letters, now=moment, days=cap.days)
    for letter in letters:
        hold = contacts.hold(letter, now=moment, cap=cap, rules=())
        if hold is None:
            contacts.add(letter, moment)
            continue
        Message.objects.filter(pk=letter.pk, state=State.PENDING).update(
            state=State.SCHEDULED, scheduled_for=hold.at, reason=hold.reason, hold_detail=hold.detail[:300],
            updated_at=moment,
        )  # fmt: skip


# --- render -----------------------------------------------------------------------------------------------


def _batch_render_files(*, batch: LetterBatch, moment: datetime) -> LetterBatch | None:
    organization = batch.organization
    messages = list(
        Message.objects.filter(batch=batch, state=State.SENDING).select_related(
            "patient__guarantor__account", "bill", "template"
        )
    )
    practice = _practice(organization)
    entries: list[_Entry] = []
    languages: dict[tuple[int, str], str] = {}
    for message in messages:
        recipient = _recipient(message)
        if not (recipient.line1 and recipient.city and recipient.zip):
            _drop(message, to=State.UNDELIVERED, reason=Reason.NO_DESTINATION, moment=moment)
            continue
        language = _body_language(message, organization, languages)
        entries.append(_Entry(message, _letter(message, practice, recipient, batch.batch_date, language)))
    entries.sort(key=lambda e: (e.letter.recipient.zip, e.letter.recipient.name.casefold(), e.message.pk))

    try:
        pdf = render([e.letter for e in entries]) if entries else b""
    except LetterTooLong:
        entries = _without_letters_too_long(entries, moment=moment)
        pdf = render([e.letter for e in entries]) if entries else b""
    if not entries:
        # Nothing left to mail: a batch without letters would only confuse the mail house.
        LetterBatch.objects.filter(pk=batch.pk, pdf="").delete()
        return None

    stem = f"{organization.slug}-{batch.batch_date:%Y-%m-%d}-{batch.pk}"
    batch.pdf.save(f"{stem}.pdf", ContentFile(pdf), save=False)
    batch.manifest.save(f"{stem}.csv", ContentFile(_manifest(entries)), save=False)
    stored = LetterBatch.objects.filter(pk=batch.pk, pdf="").update(
        pdf=batch.pdf.name, manifest=batch.manifest.name, letter_count=len(entries)
    )
    if not stored:
        # Another process rendered this batch first; its files are the batch's.
        batch.pdf.delete(save=False)
        batch.manifest.delete(save=False)
    batch.refresh_from_db()
    return batch


def _without_letters_too_long(entries: list[_Entry], *, moment: datetime) -> list[_Entry]:
    """Only on the failure path: find the letters whose body does not fit and take them out, so that one
    over-long template does not block every other letter night after night."""
    kept = []
    for entry in entries:
        try:
            render([entry.letter])
        except LetterTooLong:
            logger.warning("paper message %s does not fit on a page; marked failed", entry.message.pk)
            _drop(entry.message, to=State.FAILED, reason=Reason.PROVIDER_FAILED, moment=moment,
                  error_code="letter_too_long", error_message="The letter body does not fit on the page.")  # fmt: skip
        else:
            kept.append(entry)
    return kept


def _drop(message: Message, *, to: str, reason: str, moment: datetime, **fields: Any) -> None:
    Message.objects.filter(pk=message.pk, state=State.SENDING).update(
        state=to, reason=reason, batch=None, updated_at=moment, **fields
    )


def _practice(organization: Organization) -> Practice:
    return Practice(
        name=organization.name,
        phone=phone_display(organization.phone),
        return_address=PostalAddress(
            name=organization.name,
            line1=organization.return_address_line1,
            line2=organization.return_address_line2,
            city=organization.return_address_city,
            state=organization.return_address_state,
            zip=organization.return_address_zip,
        ),
        logo_path=_logo_path(organization),
    )


def _logo_path(organization: Organization) -> str | None:
    if not organization.logo:
        return None
    try:
        path = organization.logo.path
    except NotImplementedError:  # a storage without local files
        return None
    if not organization.logo.storage.exists(organization.logo.name):
        logger.warning("logo of %s is missing from storage; letters go out without it", organization.slug)
        return None
    return path


def _recipient(message: Message) -> PostalAddress:
    patient: Patient = message.patient
    address: Mapping[str, Any] = message.postal_address or {}
    if address.get("line1"):
        return PostalAddress(
            name=str(address.get("name") or patient.full_name),
            line1=str(address.get("line1", "")),
            line2=str(address.get("line2") or ""),
            city=str(address.get("city") or ""),
            state=str(address.get("state") or ""),
            zip=str(address.get("zip") or ""),
            care_of=str(address.get("care_of") or ""),
        )
    return PostalAddress(
        name=patient.full_name,
        line1=patient.address_line1,
        line2=patient.address_line2,
        city=patient.address_city,
        state=patient.address_state,
        zip=patient.address_zip,
        care_of=patient.care_of,
    )


def _body_language(message: Message, organization: Organization, cache: dict[tuple[int, str], str]) -> str:
    """The language the letter's body was written in: its template's translation for the patient's language
    when there is one (``template_for``, as when it was rendered), else the template's own (§13.2)."""
    template = message.template
    if template is None:
        return "en"
    key = (template.pk, message.patient.language)
    if key not in cache:
        chosen = template_for(
            organization=organization, kind=template.kind, channel=template.channel,
            template_id=template.pk, language=message.patient.language,
        )  # fmt: skip
        cache[key] = chosen.language
    return cache[key]


def _letter(
    message: Message, practice: Practice, recipient: PostalAddress, batch_date: date, language: str = "en"
) -> Letter:
    context: Mapping[str, Any] = message.context or {}
    patient: Patient = message.patient
    account = _account(patient)
    aging = _aging(context.get("aging"))
    if aging is None:
        aging = {key: getattr(account, field) for key, field in _ACCOUNT_BUCKETS.items()} if account else {}
    # The bill's own values, read, never parsed back from the display strings the body was rendered with:
    # the amount owed tonight (a payment since the decision lowers it) and its statement date.
    bill = message.bill
    if bill is not None:
        amount, due_date, statement_date = bill.amount_due, bill.due_date, bill.statement_date
    else:
        exact = _decimal(context.get("amount_due_value"))
        amount = (
            exact
            if exact is not None
            else account.patient_portion
            if account
            else sum(aging.values(), Decimal(0))
        )
        due_date, statement_date = None, None
    return Letter(
        reference=patient.guarantor_external_id or patient.external_id,
        practice=practice,
        recipient=recipient,
        # The name message_values() greeted the patient by (the preferred name, §13.2), as the body was.
        greeting_name=str(
            context.get("patient.first_name")
            or greeting_name(
                first_name=patient.first_name,
                last_name=patient.last_name,
                preferred_name=patient.preferred_name,
            )
        ),
        language=language,
        kind=message.kind,
        body=with_pay_url(message.body, context, message_id=message.pk),
        amount_due=amount,
        aging=aging,
        due_date=due_date,
        # The link (and its QR code) names this letter (``?m=``, V2), like a text's or an email's.
        pay_url=pay_url(context, message_id=message.pk) or settings.PUBLIC_BASE_URL,
        statement_date=statement_date or batch_date,
        mailed_on=batch_date,
    )


def _account(patient: Patient) -> Account | None:
    guarantor = patient.guarantor
    if guarantor is None:
        return None
    try:
        return guarantor.account
    except Account.DoesNotExist:
        return None


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value)).quantize(_CENT)
    except InvalidOperation:
        return None


def _aging(value: Any) -> dict[str, Decimal] | None:
    if not isinstance(value, Mapping):
        return None
    known = {key for key, _ in AGING_BUCKETS}
    aging = {
        key: amount for key, raw in value.items() if key in known and (amount := _decimal(raw)) is not None
    }
    return aging or None


def _iso_date(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


# --- manifest ---------------------------------------------------------------------------------------------


def _manifest(entries: Sequence[_Entry]) -> bytes:
    """One row per letter, in page order; no date of birth or other clinical detail. Cells a spreadsheet would
    run as formulas are neutralised by the one CSV writer (``practices.csv_export``)."""
    rows = [
        [
            page, entry.message.pk, entry.message.patient.external_id, entry.message.patient.guarantor_external_id,
            entry.letter.recipient.name, entry.letter.recipient.city, entry.letter.recipient.state,
            entry.letter.recipient.zip, entry.message.kind, f"{entry.letter.amount_due.quantize(_CENT)}",
        ]
        for page, entry in enumerate(entries, start=1)
    ]  # fmt: skip
    return csv_text(MANIFEST_HEADER, rows).encode("utf-8")
