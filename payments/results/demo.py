"""A few months of history for the demo practice (``seed_demo``), so that its Results page has something to
show: past statement campaigns with their messages (sent, delivered, some undeliverable), link opens and
verifications, payments (one partly refunded), and a daily AR snapshot.

The history is written as rows, dated in the past, the way the product would have left them; it ends before
today and leaves today's demo alone: every past campaign started before the guarantor's last visit (R7) and
is over (paid or closed), so the bulk list, the undeliverable list and the after-final worklist are what the
feed makes them."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction

from dunning.models import PresetStep
from dunning.selectors import dunning_settings_get
from notifications.models import Channel, Message, Reason, State
from payments.models import (
    ARSnapshot,
    BuiltDay,
    DailyFigure,
    LinkEvent,
    LinkEventKind,
    Payment,
    PaymentKind,
    PaymentStatus,
)
from practices.models import Account, Bill, BillSource, BillState, Organization, Patient

HISTORY_DAYS = 120
PREFIX = "H-"


def _at(day: date, hour: int, minute: int, organization: Organization) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=organization.tzinfo)


@transaction.atomic
def demo_history(*, organization: Organization, today: date, seed: int = 16) -> int:
    """Write the history (once: nothing when the organization has some already). Returns the campaigns made."""
    if Bill.objects.filter(organization=organization, bill_id__startswith=PREFIX).exists():
        return 0
    rng = random.Random(seed)
    preset = dunning_settings_get(organization=organization).preset
    steps = (
        list(PresetStep.objects.filter(preset=preset).order_by("bill_age_days", "channel")) if preset else []
    )
    first_email = next((s for s in steps if s.channel == Channel.EMAIL), None)
    first_sms = next((s for s in steps if s.channel == Channel.SMS), None)
    reminder = next((s for s in steps if s.channel == Channel.SMS and s.bill_age_days >= 7), first_sms)
    paper = next((s for s in steps if s.channel == Channel.PAPER), None)
    if first_email is None or reminder is None:
        return 0
    guarantors = list(
        Patient.objects.filter(
            organization=organization, is_guarantor=True, do_not_contact=False, last_visit_date__isnull=False
        ).order_by("external_id")
    )
    bills: list[Bill] = []
    plans: list[tuple[Bill, Patient, date]] = []
    for n, guarantor in enumerate(guarantors):
        if guarantor.last_visit_date is None:
            continue
        latest: date = min(today - timedelta(days=8), guarantor.last_visit_date - timedelta(days=1))
        earliest = today - timedelta(days=HISTORY_DAYS)
        if latest < earliest:
            continue
        start = earliest + timedelta(days=rng.randint(0, (latest - earliest).days))
        amount = Decimal(rng.randint(4000, 60000)) / 100
        bills.append(
            Bill(
                organization=organization, guarantor=guarantor, bill_id=f"{PREFIX}{n + 1:04d}",
                source=BillSource.STATEMENT, statement_date=start, due_date=start + timedelta(days=20),
                amount_due=amount, created_at=_at(start, 6, 0, organization), effective_created_date=start,
                state=BillState.CLOSED, last_seen_at=_at(start, 6, 0, organization), ended_at=_at(start, 6, 0, organization),
            )
        )  # fmt: skip
        plans.append((bills[-1], guarantor, start))
    Bill.objects.bulk_create(bills)

    messages: list[Message] = []
    events: list[LinkEvent] = []
    payments: list[tuple[Payment, datetime]] = []
    paid_bills: list[Bill] = []

    def message(
        bill: Bill, guarantor: Patient, step: PresetStep, when: datetime, state: str, reason: str = ""
    ) -> Message:
        delivered = state == State.DELIVERED
        row = Message(
            organization=organization, patient=guarantor, bill=bill, generation=1, step_key=step.step_key,
            kind=step.kind, channel=step.channel, body="(demo history)", state=state, reason=reason,
            context={"amount_due_value": str(bill.amount_due)},
            destination=guarantor.email if step.channel == Channel.EMAIL else guarantor.mobile_phone,
            scheduled_for=when, sent_at=None if reason == Reason.NO_DESTINATION else when,
            delivered_at=when + timedelta(minutes=rng.randint(1, 20)) if delivered else None,
            created_at=when, updated_at=when + timedelta(minutes=25),
        )  # fmt: skip
        messages.append(row)
        return row

    for bill, guarantor, start in plans:
        sent: list[tuple[Message, datetime]] = []
        email_when = _at(start, 9, rng.randint(0, 50), organization)
        bounced = rng.random() < 0.05
        state = State.UNDELIVERED if bounced else State.DELIVERED
        email = message(bill, guarantor, first_email, email_when, state, Reason.BOUNCED if bounced else "")
        if not bounced:
            sent.append((email, email_when))
        if first_sms is not None and first_sms.bill_age_days == first_email.bill_age_days:
            missing = not guarantor.mobile_phone
            sms = message(bill, guarantor, first_sms, email_when, State.UNDELIVERED if missing else State.DELIVERED,
                          Reason.NO_DESTINATION if missing else "")  # fmt: skip
            if not missing:
                sent.append((sms, email_when))
        reminder_day = start + timedelta(days=reminder.bill_age_days)
        paid_at: datetime | None = None
        # Who pays, and after which message: about half after the first statement, some after the reminder.
        roll = rng.random()
        if roll < 0.45 and sent:
            opened_message, opened_when = rng.choice(sent)
            paid_at = _respond(opened_message, opened_when, events, rng)
        elif reminder_day < today - timedelta(days=1):
            when = _at(reminder_day, 10, rng.randint(0, 50), organization)
            if guarantor.mobile_phone and reminder is not first_sms:
                sms = message(bill, guarantor, reminder, when, State.DELIVERED)
                if roll < 0.7:
                    paid_at = _respond(sms, when, events, rng)
            paper_day = start + timedelta(days=paper.bill_age_days) if paper else None
            if (
                paid_at is None
                and paper is not None
                and paper_day is not None
                and paper_day < today - timedelta(days=2)
            ):
                letter = message(bill, guarantor, paper, _at(paper_day, 20, 0, organization), State.SENT)
                if roll < 0.85:
                    paid_at = _respond(
                        letter, _at(paper_day + timedelta(days=3), 18, 0, organization), events, rng
                    )
        elif roll < 0.5:
            paid_at = email_when + timedelta(days=rng.randint(1, 6), hours=3)  # paid without opening a link
        if paid_at is not None and paid_at.date() < today:
            share = Decimal(1) if rng.random() < 0.8 else Decimal("0.5")
            amount = (bill.amount_due * share).quantize(Decimal("0.01"))
            payments.append((
                Payment(organization=organization, bill=bill, kind=PaymentKind.PAYMENT, amount=amount,
                        status=PaymentStatus.SUCCEEDED, processor="sandbox",
                        processor_reference=f"demo_{bill.bill_id}"),
                paid_at,
            ))  # fmt: skip
            bill.amount_due -= amount
            if bill.amount_due <= 0:
                bill.state = BillState.PAID
                paid_bills.append(bill)
    Message.objects.bulk_create(messages)
    # Messages were dated by hand: auto_now would have stamped them today.
    Message.objects.bulk_update(messages, ["created_at", "updated_at"])
    for event in events:
        event.message_id = event.message.pk
    LinkEvent.objects.bulk_create(events)
    created = Payment.objects.bulk_create([p for p, _ in payments])
    for payment, (_, at) in zip(created, payments, strict=True):
        payment.created_at = at
    Payment.objects.bulk_update(created, ["created_at"])
    refunded = [p for p in created if p.amount >= 100][:2]
    refunds = Payment.objects.bulk_create(
        [
            Payment(organization=organization, bill=p.bill, kind=PaymentKind.REFUND, refund_of=p, amount=-Decimal("25.00"),
                    status=PaymentStatus.SUCCEEDED, processor="sandbox", processor_reference=f"demo_refund_{p.pk}")
            for p in refunded
        ]
    )  # fmt: skip
    for refund, payment in zip(refunds, refunded, strict=True):
        refund.created_at = min(
            payment.created_at + timedelta(days=4), _at(today - timedelta(days=1), 12, 0, organization)
        )
    Payment.objects.bulk_update(refunds, ["created_at"])
    Bill.objects.bulk_update(paid_bills, ["amount_due", "state"])
    _snapshots(organization, today, rng)
    # The import of seed_demo kept the figures of the days before this history existed: build them again.
    DailyFigure.objects.filter(organization=organization).delete()
    BuiltDay.objects.filter(organization=organization).delete()
    return len(bills)


def _respond(
    message: Message, when: datetime, events: list[LinkEvent], rng: random.Random
) -> datetime | None:
    """The patient opens the link of ``message``, most verify, many pay: when they paid, or None."""
    opened = when + timedelta(hours=rng.randint(1, 30), minutes=rng.randint(0, 59))
    common = {
        "organization_id": message.organization_id, "bill_id": message.bill_id, "message": message,
        "channel": message.channel, "message_kind": message.kind, "step_key": message.step_key,
        "amount": Decimal(message.context["amount_due_value"]),
    }  # fmt: skip
    events.append(LinkEvent(event=LinkEventKind.OPENED, at=opened, **common))
    if rng.random() < 0.2:
        return None
    events.append(LinkEvent(event=LinkEventKind.VERIFIED, at=opened + timedelta(minutes=1), **common))
    if rng.random() < 0.15:
        return None
    return opened + timedelta(minutes=rng.randint(3, 9))


def _snapshots(organization: Organization, today: date, rng: random.Random) -> None:
    """One AR snapshot a day before today, drifting toward today's accounts (which the import snapshots)."""
    accounts = Account.objects.filter(organization=organization, guarantor__is_guarantor=True)
    now = [sum((getattr(a, f) for a in accounts), Decimal(0))
           for f in ("bucket_0_30", "bucket_31_60", "bucket_61_90", "bucket_over_90")]  # fmt: skip
    owing = sum(1 for a in accounts if a.total > 0)
    rows = []
    for back in range(HISTORY_DAYS, 0, -1):
        drift = [Decimal(1 + back * w / 400 + rng.uniform(-0.02, 0.02)).quantize(Decimal("0.0001"))
                 for w in (0.3, 0.8, 1.2, 1.6)]  # fmt: skip
        buckets = [(value * d).quantize(Decimal("0.01")) for value, d in zip(now, drift, strict=True)]
        rows.append(ARSnapshot(
            organization=organization, day=today - timedelta(days=back), bucket_0_30=buckets[0],
            bucket_31_60=buckets[1], bucket_61_90=buckets[2], bucket_over_90=buckets[3], total=sum(buckets, Decimal(0)),
            guarantors=owing + back // 15, taken_at=_at(today - timedelta(days=back), 6, 0, organization),
        ))  # fmt: skip
    ARSnapshot.objects.bulk_create(rows, ignore_conflicts=True)
