"""Payment-request campaigns (B2, B4, B5): a request bill, its payment link and its age-0 messages.

A campaign is started by ``campaign_start``; ``bulk_send`` (B2) and ``send_request`` (B4) decide who gets one.
Eligibility is recomputed by the server at send time (R1-R11). Idempotency is the database's job: the partial
unique constraint ``bill_one_active_request`` admits one active request bill per guarantor, so a double click,
a retried request or two workers racing end with one campaign; the loser gets ``CampaignExists``. R6 (no
other active campaign) is checked again where the campaign is written, under the organization's row lock that
the feed importer holds, so an imported statement and a request never both start (``InCampaign``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypedDict

from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.models import Channel, Kind, Message, Template
from notifications.outbox import messages_create
from notifications.send_window import SendPolicy
from notifications.templating import message_values, render_message, template_for
from payments.eligibility import eligible_guarantors, explain_guarantor, payment_settings_get
from payments.links import payment_link_issue
from payments.models import PaymentLink, PaymentRequest, RequestMode
from practices.models import BILL_OWING_STATES, Account, Bill, BillSource, BillState, Organization, Patient
from practices.services import audit_record
from practices.timezones import organization_today

# D1: the step key of a request's age-0 messages; the engine records the preset's age-0 steps of a request
# bill as skipped (reason `request`), so these messages stand for them.
REQUEST_STEP = "request"
REQUEST_CHANNELS = (Channel.SMS, Channel.EMAIL)
_CHUNK = 2000


class CampaignError(Exception):
    """A campaign could not be started; the message says why."""


class CampaignExists(CampaignError):
    """The guarantor already has an active request campaign (B2: raised when the database refuses a second)."""

    def __init__(self, guarantor_id: str) -> None:
        super().__init__(f"guarantor {guarantor_id} already has an active payment request campaign")
        self.guarantor_id = guarantor_id


class InCampaign(CampaignError):
    """R6 at the moment of the write: the guarantor's statement campaign became active after the list was read
    (a feed imported in between)."""

    def __init__(self, guarantor_id: str, bill_id: str) -> None:
        super().__init__(
            f"guarantor {guarantor_id} is now in an active campaign ({bill_id}); no request sent"
        )
        self.guarantor_id = guarantor_id


class NotEligible(CampaignError):
    """B4: the guarantor is not eligible; ``failed`` holds the failed rules as ``explain_guarantor`` words them."""

    def __init__(self, guarantor_id: str, on: date, failed: list[dict[str, Any]]) -> None:
        rules = "; ".join(f"{rule['rule']} ({rule['detail']})" for rule in failed)
        super().__init__(f"guarantor {guarantor_id} is not eligible on {on.isoformat()}: {rules}")
        self.guarantor_id = guarantor_id
        self.on = on
        self.failed = failed

    @property
    def rules(self) -> list[str]:
        return [rule["rule"] for rule in self.failed]


class UnknownGuarantor(CampaignError):
    pass


@dataclass(frozen=True)
class _Setup:
    """What every campaign of one send shares: the request channels and their templates (read once)."""

    organization: Organization
    channels: tuple[Channel, ...]
    link_lifetime_days: int
    # The request template of each (channel, patient language), read on first use (§13.2: a translation for
    # the patient's language, else the template itself).
    templates: dict[tuple[str, str], Template] = field(default_factory=dict)
    # Sending settings by organization (quiet hours, K1, K2), filled by the outbox on first use.
    policies: dict[int, SendPolicy] = field(default_factory=dict)

    def template(self, channel: str, language: str) -> Template:
        key = (channel, language)
        if key not in self.templates:
            self.templates[key] = template_for(
                organization=self.organization, kind=Kind.REQUEST, channel=channel, language=language
            )
        return self.templates[key]


def _setup(organization: Organization) -> _Setup:
    payment_settings = payment_settings_get(organization=organization)
    configured = payment_settings.request_channels or []
    channels = tuple(channel for channel in REQUEST_CHANNELS if channel in configured)
    setup = _Setup(
        organization=organization, channels=channels, link_lifetime_days=payment_settings.link_lifetime_days
    )
    for channel in channels:
        setup.template(channel, "")  # a system default missing is an error before any campaign starts
    return setup


def _destination(patient: Patient, channel: str) -> str:
    return patient.mobile_phone if channel == Channel.SMS else patient.email


def _request_bill_id(day: date, guarantor: Patient) -> str:
    # bill_id is unique per organization and at most 64 characters: 4 + 8 + 1 + 44 + 1 + 6.
    return f"REQ-{day:%Y%m%d}-{guarantor.external_id[:44]}-{secrets.token_hex(3)}"


def campaign_start(
    *,
    organization: Organization,
    guarantor: Patient,
    mode: str,
    at: datetime,
    user: Any = None,
    actor_label: str = "",
) -> Bill:
    """B5: start a request campaign for ``guarantor`` as of ``at`` (an aware datetime).

    In one transaction: the request bill (amount = the guarantor's patient portion now, effective created date
    = the organization's date of ``at``, D7), its ``PaymentRequest`` (``mode`` bulk or single), a payment link
    (P1) and one age-0 message per request channel through the outbox (quiet hours Q1; an empty destination
    makes the message undelivered, U1). Audited (T5).

    Eligibility is the caller's business (``bulk_send``, ``send_request``). Raises ``CampaignExists`` when the
    guarantor already has an active request campaign (the database's ``bill_one_active_request`` refused it),
    ``CampaignError`` when it has no balance on file, ``ValueError`` on a naive ``at``, an unknown mode or a
    guarantor of another organization.
    """
    return _campaign_start(
        organization=organization, guarantor=guarantor, mode=mode, at=at, user=user, actor_label=actor_label,
        setup=_setup(organization),
    )  # fmt: skip


def _campaign_start(
    *,
    organization: Organization,
    guarantor: Patient,
    mode: str,
    at: datetime,
    user: Any,
    actor_label: str,
    setup: _Setup,
) -> Bill:
    if timezone.is_naive(at):
        raise ValueError("at must be an aware datetime")
    if mode not in RequestMode.values:
        raise ValueError(f"unknown request mode {mode!r}")
    if guarantor.organization_id != organization.pk:
        raise ValueError(f"guarantor {guarantor.external_id} is not a patient of {organization.slug}")
    guarantor.organization = organization  # the outbox reads the recipient's zone through it (Q3)
    requested_by = user if getattr(user, "pk", None) else None
    day = organization_today(organization, at=at)
    try:
        with transaction.atomic():
            # R6 where it is written, not only where the list was read: the feed importer holds the
            # organization's row for its whole transaction, so a statement it brings for this guarantor is
            # either committed (and found here) or not yet begun. Without it, a campaign could be written just
            # after an import opened one, leaving the guarantor in two.
            locked = Organization.objects.select_for_update(no_key=True).filter(pk=organization.pk)
            locked.values_list("pk").get()
            active = (
                Bill.objects.filter(guarantor=guarantor, state=BillState.ACTIVE)
                .values_list("bill_id", "source")
                .first()
            )
            if active is not None:
                if active[1] == BillSource.REQUEST:
                    raise CampaignExists(guarantor.external_id)
                raise InCampaign(guarantor.external_id, active[0])
            portion = (
                Account.objects.filter(guarantor=guarantor).values_list("patient_portion", flat=True).first()
            )
            if portion is None:
                raise CampaignError(f"guarantor {guarantor.external_id} has no balance on file")
            bill = Bill.objects.create(
                organization=organization, guarantor=guarantor, bill_id=_request_bill_id(day, guarantor),
                source=BillSource.REQUEST, statement_date=day, amount_due=portion, created_at=at,
                effective_created_date=day, generation=1, state=BillState.ACTIVE, last_seen_at=at,
            )  # fmt: skip
            PaymentRequest.objects.create(
                organization=organization, guarantor=guarantor, bill=bill, mode=mode, requested_by=requested_by,
                requested_at=at, request_date=day,
            )  # fmt: skip
            _link, pay_ref = payment_link_issue(bill=bill, now=at, lifetime_days=setup.link_lifetime_days)
            _messages_create(bill=bill, pay_ref=pay_ref, at=at, user=requested_by, setup=setup)
            audit_record(
                organization=organization, actor=user, actor_label=actor_label, action="payment_request.send",
                obj=bill,
                changes={"guarantor": ["", guarantor.external_id], "mode": ["", mode],
                         "amount_due": ["", f"{portion:.2f}"], "requested_at": ["", at.isoformat()]},
            )  # fmt: skip
    except IntegrityError as exc:
        # Only the partial unique constraint can refuse these rows in practice (the bill id carries a random
        # part); a committed active request bill of the guarantor is how we recognise it on every backend.
        if Bill.objects.filter(
            guarantor=guarantor, source=BillSource.REQUEST, state=BillState.ACTIVE
        ).exists():
            raise CampaignExists(guarantor.external_id) from exc
        raise
    return bill


def _messages_create(
    *, bill: Bill, pay_ref: str, at: datetime, user: Any, setup: _Setup, kind: str = Kind.REQUEST
) -> list[Message]:
    """The request messages of ``bill`` on the request channels; ``kind`` ``resend`` for a re-issued link
    (no step key: the request's own messages keep theirs, D1)."""
    guarantor = bill.guarantor
    organization = bill.organization
    values = message_values(
        first_name=guarantor.first_name, last_name=guarantor.last_name, organization=organization,
        amount_due=bill.amount_due, pay_ref=pay_ref, due_date=bill.due_date, statement_date=bill.statement_date,
        preferred_name=guarantor.preferred_name, language=guarantor.language,
    )  # fmt: skip
    messages = []
    for channel in setup.channels:
        template = setup.template(channel, guarantor.language)
        subject, body = render_message(template=template, values=values)
        messages.append(
            Message(
                organization=organization,
                patient=guarantor,
                bill=bill,
                generation=bill.generation,
                step_key=REQUEST_STEP if kind == Kind.REQUEST else "",
                kind=kind,
                channel=channel,
                template=template,
                subject=subject if channel == Channel.EMAIL else "",
                body=body,
                context=values,
                destination=_destination(guarantor, channel),
                created_by=user,
            )
        )
    return messages_create(messages, now=at, policies=setup.policies) if messages else []


def bulk_send(
    *,
    organization: Organization,
    at: datetime,
    user: Any = None,
    only: list[str] | None = None,
    exclude: list[str] | None = None,
    actor_label: str = "",
) -> list[Bill]:
    """B2: start a bulk request campaign for every guarantor on the list of the organization's date of ``at``.

    The list is recomputed here (one eligibility query, R9): ``only`` narrows it to those PMS ids (an id that is
    not eligible is skipped, never forced), ``exclude`` removes ids (the staff's deselection). Each campaign is
    its own transaction, so one refused guarantor does not undo the others. Idempotent: a second run for the
    same date finds the guarantors in their campaigns (R6/R7) and does nothing; a guarantor whose campaign a
    concurrent run just started (``CampaignExists``), or whose statement a feed import opened since the list was
    read (``InCampaign``), is skipped. Returns the bills started, by guarantor id.
    """
    if timezone.is_naive(at):
        raise ValueError("at must be an aware datetime")
    on = organization_today(organization, at=at)
    candidates = eligible_guarantors(organization=organization, on=on)
    if only is not None:
        candidates = candidates.filter(external_id__in=list(only))
    if exclude:
        candidates = candidates.exclude(external_id__in=list(exclude))
    guarantors = sorted(candidates, key=lambda patient: patient.external_id)
    setup = _setup(organization)
    bills = []
    for guarantor in guarantors:
        try:
            bills.append(
                _campaign_start(
                    organization=organization,
                    guarantor=guarantor,
                    mode=RequestMode.BULK,
                    at=at,
                    user=user,
                    actor_label=actor_label,
                    setup=setup,
                )
            )
        except (CampaignExists, InCampaign):
            continue
    return bills


def send_request(
    *,
    organization: Organization,
    guarantor_id: str,
    at: datetime,
    user: Any = None,
    actor_label: str = "",
) -> Bill:
    """B4: a single (one-off) payment request for the guarantor with PMS id ``guarantor_id`` as of ``at``.

    The guarantor must be eligible on the organization's date of ``at`` (the same rules as the bulk list,
    ``explain_guarantor``), else ``NotEligible`` naming the failed rules. ``UnknownGuarantor`` for an id that is
    not a patient of the organization; ``CampaignExists`` when a concurrent send won.
    """
    if timezone.is_naive(at):
        raise ValueError("at must be an aware datetime")
    guarantor = Patient.objects.filter(organization=organization, external_id=guarantor_id).first()
    if guarantor is None:
        raise UnknownGuarantor(f"unknown guarantor {guarantor_id!r} in {organization.slug}")
    on = organization_today(organization, at=at)
    explanation = explain_guarantor(organization=organization, guarantor=guarantor, on=on)
    if not explanation["eligible"]:
        failed = [rule for rule in explanation["rules"] if not rule["passed"]]
        raise NotEligible(guarantor.external_id, on, failed)
    return campaign_start(
        organization=organization, guarantor=guarantor, mode=RequestMode.SINGLE, at=at, user=user,
        actor_label=actor_label,
    )  # fmt: skip


class CampaignMessageRow(TypedDict):
    channel: str
    state: str
    scheduled_for: str | None


class CampaignRow(TypedDict):
    guarantor_id: str
    bill_id: str
    messages: list[CampaignMessageRow]


def campaign_rows(bills: Sequence[Bill]) -> list[CampaignRow]:
    """The ``bulk_send`` / ``send_request`` JSON rows (SPEC §10), sorted by guarantor id; messages by channel.

    ``scheduled_for`` is ISO 8601 in UTC, or null.
    """
    messages: dict[int, list[CampaignMessageRow]] = {bill.pk: [] for bill in bills}
    for chunk in _chunks([bill.pk for bill in bills]):
        rows = (
            Message.objects.filter(bill_id__in=chunk, step_key=REQUEST_STEP)
            .order_by("bill_id", "channel", "pk")
            .values_list("bill_id", "channel", "state", "scheduled_for")
        )
        for bill_pk, channel, state, scheduled_for in rows:
            messages[bill_pk].append(
                CampaignMessageRow(
                    channel=channel,
                    state=state,
                    scheduled_for=scheduled_for.isoformat() if scheduled_for else None,
                )
            )
    document = [
        CampaignRow(guarantor_id=bill.guarantor.external_id, bill_id=bill.bill_id, messages=messages[bill.pk])
        for bill in bills
    ]
    document.sort(key=lambda row: row["guarantor_id"])
    return document


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


class LinkReissueError(CampaignError):
    """The link cannot be re-issued (not blocked, or its campaign has ended); the message says why."""


def payment_link_reissue(*, link: PaymentLink, user: Any, at: datetime | None = None) -> PaymentLink:
    """P2 escalation: staff re-issue a link blocked after repeated wrong dates of birth. The blocked link ends
    now; a new one (a new token) goes to the guarantor on the request channels through the outbox, as a
    ``resend`` of the request templates (quiet hours, opt-outs and do-not-contact apply as for any message).
    Audited (T5). Returns the new link."""
    moment = at or timezone.now()
    with transaction.atomic():
        locked = (
            PaymentLink.objects.select_for_update(no_key=True)
            .select_related("bill__guarantor")
            .get(pk=link.pk)
        )
        bill = locked.bill
        if locked.blocked_at is None:
            raise LinkReissueError("This payment link is not blocked.")
        if bill.state not in BILL_OWING_STATES:
            raise LinkReissueError(f"The bill is {bill.get_state_display().lower()}; nothing to pay.")
        organization = Organization.objects.get(pk=bill.organization_id)
        bill.organization = organization
        setup = _setup(organization)
        PaymentLink.objects.filter(pk=locked.pk).update(expires_at=moment)
        new_link, pay_ref = payment_link_issue(bill=bill, now=moment, lifetime_days=setup.link_lifetime_days)
        _messages_create(bill=bill, pay_ref=pay_ref, at=moment, user=user, setup=setup, kind=Kind.RESEND)
        audit_record(
            organization=organization, actor=user, action="payment_link.reissue", obj=new_link,
            changes={"blocked_link": locked.pk, "bill": bill.bill_id},
        )  # fmt: skip
    return new_link
