"""Payments the way the product takes them, for tests that need one: a checkout on the sandbox processor, "Pay"
on its hosted page, and its signed events applied by the confirmation service (no HTTP)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from payments.checkout import checkout_begin
from payments.confirmations import processor_event_apply
from payments.links import payment_link_create
from payments.models import Payment, PaymentLink, SandboxEvent
from payments.processors.base import ProcessorEvent
from payments.processors.sandbox import SandboxProcessor, hosted_outcome
from practices.models import Bill


def sandbox_events() -> list[ProcessorEvent]:
    """The sandbox's undelivered events, parsed, now marked delivered."""
    rows = list(SandboxEvent.objects.filter(delivered_at__isnull=True).order_by("created_at", "id"))
    SandboxEvent.objects.filter(pk__in=[r.pk for r in rows]).update(delivered_at=datetime.now(UTC))
    events = [json.loads(r.payload) for r in rows]
    return [
        ProcessorEvent(id=e["id"], type=e["type"], created=e["created"], object=e["data"]["object"])
        for e in events
    ]


def sandbox_payment(bill: Bill, amount: str) -> Payment:
    link = PaymentLink.objects.filter(bill=bill).first() or payment_link_create(bill=bill)[0]
    checkout, _url = checkout_begin(
        link=link, amount=Decimal(amount), success_url=lambda ref: "http://testserver/ok",
        cancel_url="http://testserver/no", processor=SandboxProcessor(),
    )  # fmt: skip
    hosted_outcome(
        session_id=checkout.session_id, outcome="pay", webhook_url="http://testserver/webhooks/sandbox/"
    )
    for event in sandbox_events():
        processor_event_apply(processor="sandbox", event=event)
    return Payment.objects.get(checkout=checkout)
