"""The dunning engine (SPEC §7, D1-D13): which communication is due for which bill on a date.

Set-based where it counts: the run reads only the active bills whose stored next dunning date has come
(an indexed range, D13), locks them with SKIP LOCKED so that concurrent runs split rather than repeat
the work, reads the decisions already taken for them in one query, decides in memory over that due set
only, and writes decisions and messages in bulk. A decision is unique per (bill, generation, step,
channel) in the database (D1), so a step is never decided, nor sent, twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dunning.models import Action, DunningDecision, DunningRun, DunningSettings, PresetStep, SkipReason
from dunning.selectors import dunning_settings_get
from notifications.models import Channel, Message, OptOut
from notifications.outbox import messages_create
from notifications.templating import format_amount, format_date, format_due_date, render_message, template_for
from payments.links import payment_link_create
from payments.models import Snooze
from practices.models import Bill, BillSource, BillState, Organization, Patient

ELECTRONIC = ("sms", "email")
DROP_KINDS = ("due", "past_due")


@dataclass
class Decision:
    """One decision of a run, as `run_dunning --json` prints it (SPEC §10)."""

    bill: Bill
    generation: int
    bill_age_days: int
    step_age_days: int
    kind: str
    channel: str
    action: str
    reason: str
    step_key: str
    step: PresetStep | None = None
    message: Message | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "bill_id": self.bill.bill_id, "generation": self.generation, "bill_age_days": self.bill_age_days,
            "step_age_days": self.step_age_days, "kind": self.kind, "channel": self.channel, "action": self.action,
            "reason": self.reason,
        }  # fmt: skip


@dataclass
class _Contact:
    """What the engine knows of a guarantor's reachability on the run date."""

    sms: str
    email: str
    sms_opted_out: bool
    email_opted_out: bool
    address_invalid: bool
    postal: dict[str, str] = field(default_factory=dict)

    def opted_out(self, channel: str) -> bool:
        return self.sms_opted_out if channel == "sms" else self.email_opted_out

    def deliverable(self, channel: str) -> bool:
        return bool(self.sms if channel == "sms" else self.email) and not self.opted_out(channel)


def run_dunning(
    *, organization: Organization, on: date, dry_run: bool = False, now: datetime | None = None
) -> list[Decision]:
    """Decide and record every communication due on ``on``; with ``dry_run`` nothing is written."""
    moment = now or timezone.now()
    settings = dunning_settings_get(organization=organization)
    if settings.preset_id is None:
        return []
    steps = list(PresetStep.objects.filter(preset_id=settings.preset_id).order_by("bill_age_days", "channel"))
    with transaction.atomic():
        decisions, plan = _decide(organization, settings, steps, on)
        if dry_run:
            transaction.set_rollback(True)
            return decisions
        _write(organization, decisions, on, moment)
        _advance_bills(plan, moment)
    return decisions


Plan = dict[tuple[date | None, bool], list[int]]


def _decide(
    organization: Organization, settings: DunningSettings, steps: list[PresetStep], on: date
) -> tuple[list[Decision], Plan]:
    """The decisions for every due bill, and the plan for the bills read: (next due date, completed) → ids."""
    bills = list(
        Bill.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("guarantor")
        .filter(
            Q(next_dunning_date__lte=on) | Q(next_dunning_date__isnull=True),
            organization=organization,
            state=BillState.ACTIVE,
        )
        .order_by("bill_id")
    )
    plan: Plan = defaultdict(list)
    if not bills:
        return [], plan
    guarantor_ids = {bill.guarantor_id for bill in bills}
    snoozed = set(
        Snooze.objects.filter(
            guarantor_id__in=guarantor_ids, lifted_at__isnull=True, until__gt=on
        ).values_list("guarantor_id", flat=True)
    )
    decided = set(
        DunningDecision.objects.filter(bill__in=bills).values_list(
            "bill_id", "generation", "step_key", "channel"
        )
    )
    contacts = _contacts(organization, [bill.guarantor for bill in bills])

    decisions: list[Decision] = []
    for bill in bills:
        age = (on - bill.effective_created_date).days
        if age < 0:
            plan[(bill.effective_created_date, False)].append(bill.pk)
            continue
        if bill.guarantor_id in snoozed:
            # D11: nothing while snoozed; the steps fall due again afterwards, with catch-up (D2).
            plan[(on + timedelta(days=1), False)].append(bill.pk)
            continue
        decisions.extend(_decide_bill(bill, age, steps, decided, contacts[bill.guarantor_id], settings, on))
        later = [s.bill_age_days for s in steps if s.bill_age_days > age]
        if later:
            plan[(bill.effective_created_date + timedelta(days=min(later)), False)].append(bill.pk)
        else:
            plan[(None, True)].append(bill.pk)  # past its last step: completed (D11)
    decisions.sort(key=lambda d: (d.bill.bill_id, d.step_age_days, d.channel))
    return decisions, plan


def _decide_bill(
    bill: Bill, age: int, steps: list[PresetStep], decided: set[tuple[int, int, str, str]], contact: _Contact,
    settings: DunningSettings, on: date,
) -> list[Decision]:  # fmt: skip
    generation = bill.generation
    due = [
        s
        for s in steps
        if s.bill_age_days <= age and (bill.pk, generation, s.step_key, s.channel) not in decided
    ]
    out: list[Decision] = []

    def decide(
        step: PresetStep | None, kind: str, channel: str, step_age: int, key: str, action: str, reason: str
    ) -> None:
        out.append(Decision(bill=bill, generation=generation, bill_age_days=age, step_age_days=step_age, kind=kind,
                            channel=channel, action=action, reason=reason, step_key=key, step=step))  # fmt: skip

    # B5: a payment request's age-0 messages were the request itself.
    if bill.source == BillSource.REQUEST:
        for step in [s for s in due if s.bill_age_days == 0]:
            decide(step, step.kind, step.channel, 0, step.step_key, Action.SKIP, SkipReason.REQUEST)
        due = [s for s in due if s.bill_age_days > 0]

    if bill.guarantor.do_not_contact:  # D11
        for step in due:
            decide(
                step,
                step.kind,
                step.channel,
                step.bill_age_days,
                step.step_key,
                Action.SKIP,
                SkipReason.DO_NOT_CONTACT,
            )
        return out

    # D2: per channel only the latest due step goes; the earlier ones are superseded.
    latest: dict[str, PresetStep] = {}
    for step in due:
        if step.channel not in latest or step.bill_age_days > latest[step.channel].bill_age_days:
            latest[step.channel] = step
    dropped: set[tuple[int, str]] = set()
    paper_due_ages = {s.bill_age_days for s in latest.values() if s.channel == "paper"}
    for step in due:
        if latest[step.channel] is not step:
            decide(
                step,
                step.kind,
                step.channel,
                step.bill_age_days,
                step.step_key,
                Action.SKIP,
                SkipReason.SUPERSEDED,
            )
            continue
        if step.channel == "paper":
            reason = _paper_reason(contact, settings, bill.amount_due)
            decide(
                step,
                step.kind,
                "paper",
                step.bill_age_days,
                step.step_key,
                Action.SKIP if reason else Action.SEND,
                reason,
            )
            continue
        if bill.amount_due <= settings.min_electronic:  # D3
            decide(
                step,
                step.kind,
                step.channel,
                step.bill_age_days,
                step.step_key,
                Action.SKIP,
                SkipReason.BELOW_THRESHOLD,
            )
            continue
        if contact.opted_out(step.channel):  # D4
            decide(
                step,
                step.kind,
                step.channel,
                step.bill_age_days,
                step.step_key,
                Action.SKIP,
                SkipReason.OPTED_OUT,
            )
            all_out = all(contact.opted_out(c) for c in ELECTRONIC)
            drop_key = (step.bill_age_days, step.kind)
            if (settings.drop_to_paper_on_opt_out and step.kind in DROP_KINDS and all_out  # D5
                    and drop_key not in dropped and step.bill_age_days not in paper_due_ages):  # fmt: skip
                dropped.add(drop_key)
                key = f"drop:{step.bill_age_days}:{step.kind}"
                if (bill.pk, generation, key, "paper") not in decided and not _paper_reason(
                    contact, settings, bill.amount_due
                ):
                    decide(
                        step,
                        step.kind,
                        "paper",
                        step.bill_age_days,
                        key,
                        Action.SEND,
                        SkipReason.DROP_TO_PAPER,
                    )
            continue
        # A missing destination still sends: the outbox makes it undeliverable (U1), not silence (D4).
        decide(step, step.kind, step.channel, step.bill_age_days, step.step_key, Action.SEND, "")

    if bill.amount_changed and settings.communicate_on_update:  # D10
        for channel in ELECTRONIC:
            key = f"update:{on.isoformat()}"
            if (bill.pk, generation, key, channel) in decided:
                continue
            if bill.amount_due <= settings.min_electronic:
                decide(None, "bill_update", channel, age, key, Action.SKIP, SkipReason.BELOW_THRESHOLD)
            elif contact.opted_out(channel):
                decide(None, "bill_update", channel, age, key, Action.SKIP, SkipReason.OPTED_OUT)
            elif not bill.guarantor.do_not_contact:
                decide(None, "bill_update", channel, age, key, Action.SEND, "")
    return out


def _paper_reason(contact: _Contact, settings: DunningSettings, amount_due: Decimal) -> str:
    """D6 and D3 for a letter: '' when it may go."""
    if settings.skip_paper_when_electronic:
        if any(contact.deliverable(c) for c in ELECTRONIC):
            return SkipReason.ELECTRONIC_AVAILABLE
        if contact.address_invalid:
            return SkipReason.INVALID_ADDRESS
    if amount_due <= settings.min_print:
        return SkipReason.BELOW_THRESHOLD
    return ""


def _contacts(organization: Organization, guarantors: list[Patient]) -> dict[int, _Contact]:
    addresses = {p.mobile_phone for p in guarantors if p.mobile_phone} | {
        p.email for p in guarantors if p.email
    }
    opted = set(
        OptOut.objects.filter(organization=organization, active=True, address__in=addresses).values_list(
            "channel", "address"
        )
    )
    contacts = {}
    for p in guarantors:
        postal = {}
        if p.address_line1:
            postal = {"name": p.full_name, "line1": p.address_line1, "line2": p.address_line2, "city": p.address_city,
                      "state": p.address_state, "zip": p.address_zip}  # fmt: skip
        contacts[p.pk] = _Contact(
            sms=p.mobile_phone,
            email=p.email,
            sms_opted_out=p.pms_sms_opt_out or ("sms", p.mobile_phone) in opted,
            email_opted_out=p.pms_email_opt_out or ("email", p.email) in opted,
            address_invalid=p.address_status == "invalid",
            postal=postal,
        )
    return contacts


def _write(organization: Organization, decisions: list[Decision], on: date, moment: datetime) -> None:
    by_bill: dict[int, list[Decision]] = defaultdict(list)
    for decision in decisions:
        by_bill[decision.bill.pk].append(decision)
    contacts = _contacts(
        organization, list({d.bill.guarantor_id: d.bill.guarantor for d in decisions}.values())
    )

    messages: list[Message] = []
    for bill_decisions in by_bill.values():
        sends = [d for d in bill_decisions if d.action == Action.SEND]
        if not sends:
            continue
        bill = sends[0].bill
        _, pay_url = payment_link_create(bill=bill, now=moment)
        for decision in sends:
            decision.message = _message(organization, decision, contacts[bill.guarantor_id], pay_url)
            messages.append(decision.message)
    messages_create(messages, now=moment)
    DunningDecision.objects.bulk_create(
        [
            DunningDecision(
                organization=organization,
                bill=d.bill,
                generation=d.generation,
                step=d.step,
                step_key=d.step_key,
                run_date=on,
                bill_age_days=d.bill_age_days,
                step_age_days=d.step_age_days,
                kind=d.kind,
                channel=d.channel,
                action=d.action,
                reason=d.reason,
                message=d.message,
            )
            for d in decisions
        ]
    )
    run, _ = DunningRun.objects.get_or_create(organization=organization, run_date=on)
    DunningRun.objects.filter(pk=run.pk).update(finished_at=moment, decisions=run.decisions + len(decisions))


def _advance_bills(plan: Plan, moment: datetime) -> None:
    """Store each bill's next due date (D13); a bill past its last step is completed (D11); the bill-update
    flag is consumed (D10). One UPDATE per distinct next date."""
    for (next_date, complete), ids in plan.items():
        fields: dict[str, Any] = {"next_dunning_date": next_date, "amount_changed": False}
        if complete:
            fields.update(state=BillState.COMPLETED, ended_at=moment)
        for start in range(0, len(ids), 5000):
            Bill.objects.filter(pk__in=ids[start : start + 5000], state=BillState.ACTIVE).update(**fields)


def _message(organization: Organization, decision: Decision, contact: _Contact, pay_url: str) -> Message:
    bill = decision.bill
    guarantor = bill.guarantor
    template_id = (
        decision.step.template_id
        if decision.step is not None and decision.channel == decision.step.channel
        else None
    )
    template = template_for(
        organization=organization, kind=decision.kind, channel=decision.channel, template_id=template_id
    )
    values = {
        "patient.first_name": guarantor.first_name, "patient.last_name": guarantor.last_name,
        "practice.name": organization.name, "practice.phone": organization.phone,
        "amount_due": format_amount(bill.amount_due), "pay_url": pay_url, "due_date": format_due_date(bill.due_date),
        "statement_date": format_date(bill.statement_date),
    }  # fmt: skip
    subject, body = render_message(template=template, values=values)
    destination = {"sms": contact.sms, "email": contact.email}.get(decision.channel, "")
    return Message(
        organization=organization, patient=guarantor, bill=bill, generation=decision.generation,
        step_key=decision.step_key, kind=decision.kind, channel=decision.channel, template=template, subject=subject,
        body=body, context={**values, "amount_due_value": str(bill.amount_due)}, destination=destination,
        postal_address=contact.postal if decision.channel == Channel.PAPER else {},
    )  # fmt: skip
