"""Refund and dispute states (H3): a refund the processor reports as pending is recorded pending and reopens
nothing until Stripe's refund events say it succeeded; a failed refund holds nothing; a refund that fails after
it succeeded, and a dispute won, come back as a reversal row; a dispute lost stays owed.

Everything goes through the fake Stripe server (tests/fakes/stripe_server.py) and its signed events, posted to
``/webhooks/stripe/``. Shapes: the Refund object and its ``status`` (pending, requires_action, succeeded, failed,
canceled), https://docs.stripe.com/api/refunds/object; ``refund.created``, ``refund.updated`` and
``refund.failed`` for every refund since API version 2024-10-28.acacia,
https://docs.stripe.com/changelog/acacia/2024-10-28/refund-webhook-update; failed refunds,
https://docs.stripe.com/refunds#failed-refunds; the Dispute object and its ``status`` (won, lost),
https://docs.stripe.com/api/disputes/object, and ``charge.dispute.closed``,
https://docs.stripe.com/api/events/types#event_types-charge.dispute.closed."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from payments.checkout import checkout_begin, payments_export_rows
from payments.links import payment_link_create
from payments.models import Payment, PaymentKind, PaymentLink, PaymentStatus, ReviewReason
from payments.refunds import payment_refund, refund_left
from practices.models import AuditEvent, Bill, BillSource, BillState, Organization
from tests.factories import GuarantorFactory, OrganizationFactory
from tests.fakes.stripe_server import FakeStripe

pytestmark = pytest.mark.django_db

WEBHOOK = "/webhooks/stripe/"


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        settings.PAYMENT_PROCESSOR = "stripe"
        settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = server.secret_key, server.webhook_secret
        settings.STRIPE_API_BASE_URL = server.base_url
        yield server


@pytest.fixture
def organization() -> Organization:
    return OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")


def campaign(organization: Organization, amount: str) -> Bill:
    guarantor = GuarantorFactory.create(organization=organization, date_of_birth=date(1980, 4, 12))
    now = datetime.now(UTC)
    return Bill.objects.create(
        organization=organization, guarantor=guarantor, bill_id=f"R-{guarantor.external_id}",
        source=BillSource.REQUEST, state=BillState.ACTIVE, amount_due=Decimal(amount), created_at=now,
        effective_created_date=now.date(), last_seen_at=now,
    )  # fmt: skip


def post(client: Client, fake: FakeStripe, event: dict[str, Any]) -> dict[str, Any]:
    body, header = fake.signed(event)
    answer = client.post(WEBHOOK, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
    assert answer.status_code == 200
    return dict(answer.json())


def deliver_all(client: Client, fake: FakeStripe) -> list[tuple[str, str]]:
    """(type, outcome) of every pending event, in order."""
    done = []
    while fake.pending:
        event = fake.pending.popleft()
        done.append((event["type"], post(client, fake, event)["outcome"]))
    return done


def pay(client: Client, fake: FakeStripe, bill: Bill, amount: str) -> Payment:
    link = PaymentLink.objects.filter(bill=bill).first() or payment_link_create(bill=bill)[0]
    checkout, _url = checkout_begin(
        link=link, amount=Decimal(amount), success_url=lambda ref: f"http://testserver/done/{ref}/",
        cancel_url="http://testserver/cancelled/",
    )  # fmt: skip
    fake.complete(checkout.session_id)
    deliver_all(client, fake)
    return Payment.objects.get(checkout=checkout)


def owed(bill: Bill) -> tuple[Decimal, str]:
    bill.refresh_from_db()
    return bill.amount_due, bill.state


def exported(organization: Organization) -> list[tuple[str, str]]:
    return [
        (r["kind"], r["amount"])
        for r in payments_export_rows(organization=organization, since=date(2026, 1, 1))
    ]


# Refunds: pending, succeeded, failed


def test_a_pending_refund_reopens_nothing_until_stripe_says_it_succeeded(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    bill = campaign(organization, "100.00")
    payment = pay(client, fake, bill, "100.00")
    fake.refund_status = "pending"  # the card's bank takes its time

    refund = payment_refund(payment=payment, amount=Decimal("40.00"), actor_label="test")

    assert refund.status == PaymentStatus.PENDING
    assert fake.refunds[refund.processor_reference]["status"] == "pending"
    assert owed(bill) == (Decimal("0.00"), BillState.PAID)  # nothing is owed again yet
    assert refund_left(payment=payment) == Decimal("60.00")  # but it cannot be refunded twice
    assert exported(organization) == [("payment", "100.00")]
    assert deliver_all(client, fake) == [
        ("charge.refunded", "refunds already recorded"), ("refund.created", "already recorded"),
    ]  # fmt: skip

    fake.refund_settle(refund.processor_reference, status="succeeded")
    assert deliver_all(client, fake) == [("refund.updated", "refund succeeded")]

    refund.refresh_from_db()
    assert refund.status == PaymentStatus.SUCCEEDED
    assert owed(bill) == (Decimal("40.00"), BillState.ACTIVE)
    assert exported(organization) == [("payment", "100.00"), ("refund", "-40.00")]
    assert AuditEvent.objects.filter(action="payment.refund_succeeded", object_id=str(refund.pk)).exists()


def test_a_pending_refund_that_fails_holds_nothing_and_can_be_asked_again(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    bill = campaign(organization, "100.00")
    payment = pay(client, fake, bill, "100.00")
    fake.refund_status = "pending"
    refund = payment_refund(payment=payment, amount=Decimal("100.00"), actor_label="test")
    deliver_all(client, fake)

    fake.refund_settle(refund.processor_reference, status="failed", failure_reason="expired_or_canceled_card")
    assert deliver_all(client, fake) == [
        ("refund.updated", "refund failed: nothing was reopened"), ("refund.failed", "already recorded"),
    ]  # fmt: skip

    refund.refresh_from_db()
    assert refund.status == PaymentStatus.FAILED
    assert owed(bill) == (Decimal("0.00"), BillState.PAID)
    assert refund_left(payment=payment) == Decimal("100.00")  # restored
    assert exported(organization) == [("payment", "100.00")]

    # A second request is a new one at Stripe (a new idempotency key), not the failed refund replayed.
    fake.refund_status = "succeeded"
    again = payment_refund(payment=payment, amount=Decimal("100.00"), actor_label="test")
    keys = [r["idempotency_key"] for r in fake.api_calls("POST", "/v1/refunds")]
    assert len(set(keys)) == 2 and again.processor_reference != refund.processor_reference
    assert again.status == PaymentStatus.SUCCEEDED
    assert owed(bill) == (Decimal("100.00"), BillState.ACTIVE)


def test_a_refund_that_fails_after_it_succeeded_is_reversed(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    bill = campaign(organization, "100.00")
    payment = pay(client, fake, bill, "100.00")
    refund = payment_refund(payment=payment, amount=Decimal("30.00"), actor_label="test")
    deliver_all(client, fake)
    assert owed(bill) == (Decimal("30.00"), BillState.ACTIVE)

    fake.refund_settle(refund.processor_reference, status="failed")
    outcomes = deliver_all(client, fake)

    assert outcomes[0] == ("refund.updated", "refund failed after it succeeded: reversed")
    reversal = Payment.objects.get(kind=PaymentKind.REVERSAL)
    assert (reversal.amount, reversal.refund_of, reversal.processor_reference) == (
        Decimal("30.00"), payment, f"{refund.processor_reference}/failed",
    )  # fmt: skip
    assert owed(bill) == (Decimal("0.00"), BillState.PAID)
    assert refund_left(payment=payment) == Decimal("100.00")
    assert exported(organization) == [("payment", "100.00"), ("refund", "-30.00"), ("reversal", "30.00")]
    # A later charge.refunded (the running total back at 0) finds nothing missing.
    assert post(client, fake, fake.event_of("charge.refunded"))["outcome"] in (
        "duplicate",
        "refunds already recorded",
    )


def test_the_refund_command_says_when_the_refund_is_pending(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    bill = campaign(organization, "80.00")
    payment = pay(client, fake, bill, "80.00")
    fake.refund_status = "pending"
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "refund", "--org", "smile-dental", "--payment", str(payment.pk), "--json", stdout=out, stderr=err
    )

    document = json.loads(out.getvalue())
    assert (document["status"], document["amount"], document["left_to_refund"], document["bill_state"]) == (
        "pending", "-80.00", "0.00", "paid",
    )  # fmt: skip
    other = pay(client, fake, campaign(organization, "20.00"), "20.00")
    call_command("refund", "--org", "smile-dental", "--payment", str(other.pk), stdout=out, stderr=err)
    assert f"refund pending at the processor: 20.00 of payment {other.pk}" in err.getvalue()


# Disputes: won, lost


def test_a_dispute_won_takes_the_amount_off_again_and_needs_no_one_any_more(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    bill = campaign(organization, "60.00")
    payment = pay(client, fake, bill, "60.00")
    opened = fake.dispute(payment.processor_reference)
    deliver_all(client, fake)
    assert owed(bill) == (Decimal("60.00"), BillState.ACTIVE)

    fake.dispute_close(opened["id"], status="won")
    assert deliver_all(client, fake) == [
        ("charge.dispute.funds_reinstated", "ignored"), ("charge.dispute.closed", "dispute won: the amount is paid again"),
    ]  # fmt: skip
    assert post(client, fake, fake.event_of("charge.dispute.closed"))["duplicate"] is True  # a retry

    dispute = Payment.objects.get(kind=PaymentKind.DISPUTE)
    reversal = Payment.objects.get(kind=PaymentKind.REVERSAL)
    assert (reversal.amount, reversal.refund_of, reversal.processor_reference) == (
        Decimal("60.00"), payment, f"{opened['id']}/won",
    )  # fmt: skip
    assert (dispute.needs_review, dispute.reviewed_at is not None) == (ReviewReason.DISPUTED, True)
    assert owed(bill) == (Decimal("0.00"), BillState.PAID)
    assert exported(organization) == [("payment", "60.00"), ("dispute", "-60.00"), ("reversal", "60.00")]


def test_a_dispute_lost_keeps_the_amount_owed(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    bill = campaign(organization, "60.00")
    payment = pay(client, fake, bill, "60.00")
    opened = fake.dispute(payment.processor_reference)
    deliver_all(client, fake)

    fake.dispute_close(opened["id"], status="lost")
    assert deliver_all(client, fake) == [("charge.dispute.closed", "dispute lost: the amount stays owed")]

    assert not Payment.objects.filter(kind=PaymentKind.REVERSAL).exists()
    assert owed(bill) == (Decimal("60.00"), BillState.ACTIVE)
    assert Payment.objects.get(kind=PaymentKind.DISPUTE).reviewed_at is None  # staff still to look at it
    assert AuditEvent.objects.filter(action="payment.dispute_lost").count() == 1
