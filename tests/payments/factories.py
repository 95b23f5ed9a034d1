"""Factories for bills, payment requests and snoozes, on top of ``tests.factories``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import factory

from payments.models import PaymentRequest, RequestMode, Snooze
from practices.models import Bill, BillSource, BillState
from tests.factories import FEED_TIME, GuarantorFactory


class BillFactory(factory.django.DjangoModelFactory[Bill]):
    class Meta:
        model = Bill

    guarantor = factory.SubFactory(GuarantorFactory)
    organization = factory.SelfAttribute("guarantor.organization")
    bill_id = factory.Sequence(lambda n: f"S-{n}")
    source = BillSource.STATEMENT
    statement_date = factory.SelfAttribute("effective_created_date")
    amount_due = Decimal("100.00")
    created_at = FEED_TIME
    effective_created_date = date(2026, 11, 20)
    state = BillState.ACTIVE
    last_seen_at = FEED_TIME

    class Params:
        closed = factory.Trait(state=BillState.CLOSED, ended_at=FEED_TIME)
        paid = factory.Trait(state=BillState.PAID, ended_at=FEED_TIME)


class PaymentRequestFactory(factory.django.DjangoModelFactory[PaymentRequest]):
    """A request and its campaign (a request bill starting on the request date)."""

    class Meta:
        model = PaymentRequest

    guarantor = factory.SubFactory(GuarantorFactory)
    organization = factory.SelfAttribute("guarantor.organization")
    request_date = date(2026, 11, 20)
    bill = factory.SubFactory(
        BillFactory,
        guarantor=factory.SelfAttribute("..guarantor"),
        source=BillSource.REQUEST,
        bill_id=factory.Sequence(lambda n: f"R-{n}"),
        statement_date=None,
        effective_created_date=factory.SelfAttribute("..request_date"),
    )
    mode = RequestMode.BULK
    requested_at = FEED_TIME


class SnoozeFactory(factory.django.DjangoModelFactory[Snooze]):
    class Meta:
        model = Snooze

    guarantor = factory.SubFactory(GuarantorFactory)
    organization = factory.SelfAttribute("guarantor.organization")
    until = date(2026, 12, 1)
    reason = "Insurance still processing"
