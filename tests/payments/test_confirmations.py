"""The processor webhooks (H2, H3, T3): signed confirmations record payments, refunds and disputes, once.

Events come from the fake Stripe server (tests/fakes/stripe_server.py): the real SDK starts the checkout, the
fake completes it as the hosted page would, and its events, signed with Stripe's scheme under the endpoint's
secret, are posted to ``/webhooks/stripe/`` through Django's test client. Shapes:
https://docs.stripe.com/api/events/object, https://docs.stripe.com/api/checkout/sessions/object,
https://docs.stripe.com/api/charges/object (``amount_refunded``), https://docs.stripe.com/api/disputes/object.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from payments.checkout import checkout_begin
from payments.confirmations import processor_event_apply
from payments.links import payment_link_create
from payments.models import (
    Checkout,
    CheckoutStatus,
    Payment,
    PaymentKind,
    PaymentLink,
    PaymentRequest,
    PaymentStatus,
    ProcessorEvent,
    RequestMode,
    ReviewReason,
)
from payments.processors.base import ProcessorEvent as Event
from payments.refunds import payment_refund
from practices.models import AuditEvent, Bill, BillSource, BillState, Organization
from tests.concurrency import in_threads
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


def campaign(organization: Organization, amount: str = "150.00", *, source: str = BillSource.REQUEST) -> Bill:
    guarantor = GuarantorFactory.create(organization=organization, date_of_birth=date(1980, 4, 12))
    now = datetime.now(UTC)
    return Bill.objects.create(
        organization=organization, guarantor=guarantor, bill_id=f"R-{guarantor.external_id}", source=source,
        state=BillState.ACTIVE, amount_due=Decimal(amount), created_at=now, effective_created_date=now.date(),
        last_seen_at=now,
    )  # fmt: skip


def start(bill: Bill, amount: str) -> tuple[PaymentLink, Checkout]:
    link = PaymentLink.objects.filter(bill=bill).first() or payment_link_create(bill=bill)[0]
    checkout, _url = checkout_begin(
        link=link, amount=Decimal(amount), success_url=lambda ref: f"http://testserver/done/{ref}/",
        cancel_url="http://testserver/cancelled/",
    )  # fmt: skip
    return link, checkout


def post(client: Client, fake: FakeStripe, event: dict[str, Any], **sign: Any) -> Any:
    body, header = fake.signed(event, **sign)
    return client.post(WEBHOOK, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


def deliver_all(client: Client, fake: FakeStripe) -> list[int]:
    statuses = []
    while fake.pending:
        statuses.append(post(client, fake, fake.pending.popleft()).status_code)
    return statuses


def pay(client: Client, fake: FakeStripe, bill: Bill, amount: str) -> Payment:
    _link, checkout = start(bill, amount)
    fake.complete(checkout.session_id)
    assert deliver_all(client, fake) == [200, 200]  # payment_intent.succeeded, checkout.session.completed
    return Payment.objects.get(checkout=checkout)


def test_a_completed_checkout_records_the_payment_in_exact_cents_and_reduces_the_campaign(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    bill = campaign(organization, "150.00")

    payment = pay(client, fake, bill, "49.99")

    assert (payment.kind, payment.amount, payment.status, payment.processor) == (
        PaymentKind.PAYMENT, Decimal("49.99"), PaymentStatus.SUCCEEDED, "stripe",
    )  # fmt: skip
    assert payment.processor_reference == fake.sessions[payment.checkout.session_id]["payment_intent"]  # type: ignore[union-attr]
    bill.refresh_from_db()
    assert (bill.amount_due, bill.state) == (Decimal("100.01"), BillState.ACTIVE)
    assert Checkout.objects.get().status == CheckoutStatus.COMPLETE
    assert ProcessorEvent.objects.count() == 2
    audit = AuditEvent.objects.get(action="payment.record")
    assert (audit.actor_label, audit.changes["amount_due"]) == ("stripe", ["150.00", "100.01"])


def test_partial_payments_keep_reducing_the_campaign_and_paying_in_full_closes_it(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    """H1, D11."""
    bill = campaign(organization, "150.00")

    pay(client, fake, bill, "50.00")
    pay(client, fake, bill, "60.00")
    bill.refresh_from_db()
    assert (bill.amount_due, bill.state) == (Decimal("40.00"), BillState.ACTIVE)
    pay(client, fake, bill, "40.00")

    bill.refresh_from_db()
    assert (bill.amount_due, bill.state) == (Decimal("0.00"), BillState.PAID)
    assert bill.ended_at is not None
    assert Payment.objects.count() == 3


def test_a_retried_event_and_the_second_event_of_a_payment_change_nothing(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    bill = campaign(organization, "150.00")
    _link, checkout = start(bill, "50.00")
    fake.complete(checkout.session_id)
    intent_event, session_event = list(fake.pending)

    answers = [
        post(client, fake, event) for event in (session_event, session_event, intent_event, session_event)
    ]

    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert [json.loads(a.content)["duplicate"] for a in answers] == [False, True, False, True]
    assert json.loads(answers[2].content)["outcome"] == "already recorded"
    assert Payment.objects.count() == 1
    bill.refresh_from_db()
    assert bill.amount_due == Decimal("100.00")


@pytest.mark.parametrize("case", ["unsigned", "wrong secret", "tampered", "stale"])
def test_an_unsigned_or_wrongly_signed_call_answers_400_and_changes_nothing(
    client: Client, fake: FakeStripe, organization: Organization, case: str
) -> None:
    bill = campaign(organization, "150.00")
    _link, checkout = start(bill, "50.00")
    fake.complete(checkout.session_id)
    event = fake.event_of("checkout.session.completed")
    body, header = fake.signed(event)
    if case == "unsigned":
        header = ""
    elif case == "wrong secret":
        body, header = fake.signed(event, secret="whsec_forged")
    elif case == "tampered":
        body = body.replace(b'"amount_total": 5000', b'"amount_total": 15000')
        assert b"15000" in body
    else:
        body, header = fake.signed(event, timestamp=int(time.time()) - 3600)

    response = client.post(WEBHOOK, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)

    assert response.status_code == 400
    assert not Payment.objects.exists()
    assert not ProcessorEvent.objects.exists()
    bill.refresh_from_db()
    assert bill.amount_due == Decimal("150.00")


def test_without_a_webhook_secret_nothing_is_accepted(
    client: Client, fake: FakeStripe, organization: Organization, settings: Any
) -> None:
    """T3: no webhook is ever open, even one signed with an empty secret."""
    bill = campaign(organization)
    _link, checkout = start(bill, "50.00")
    fake.complete(checkout.session_id)
    settings.STRIPE_WEBHOOK_SECRET = ""

    assert post(client, fake, fake.event_of("checkout.session.completed"), secret="").status_code == 400
    assert not Payment.objects.exists()


def test_the_webhook_takes_only_post(client: Client, fake: FakeStripe) -> None:
    assert client.get(WEBHOOK).status_code == 405


def test_a_declined_attempt_is_kept_on_the_checkout_and_takes_nothing(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    bill = campaign(organization)
    _link, checkout = start(bill, "50.00")

    fake.decline(checkout.session_id)
    assert deliver_all(client, fake) == [200]

    checkout.refresh_from_db()
    assert (checkout.failed_attempts, checkout.last_failure, checkout.status) == (
        1,
        "Your card was declined.",
        "open",
    )
    assert not Payment.objects.exists()
    fake.complete(checkout.session_id)  # another card on the same hosted page
    deliver_all(client, fake)
    assert Payment.objects.get().amount == Decimal("50.00")


def test_a_confirmation_after_the_link_expired_is_recorded_and_flagged(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    bill = campaign(organization)
    link, checkout = start(bill, "50.00")
    PaymentLink.objects.filter(pk=link.pk).update(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    fake.complete(checkout.session_id)

    deliver_all(client, fake)

    payment = Payment.objects.get()
    assert payment.needs_review == ReviewReason.LINK_ENDED
    bill.refresh_from_db()
    assert bill.amount_due == Decimal("100.00")


def test_a_confirmation_for_a_campaign_that_ended_is_recorded_and_flagged(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    """H2: the money was taken; the PMS closed the campaign (a payment plan) while the patient paid."""
    bill = campaign(organization)
    _link, checkout = start(bill, "50.00")
    Bill.objects.filter(pk=bill.pk).update(state=BillState.CLOSED, ended_at=datetime.now(UTC))
    fake.complete(checkout.session_id)

    deliver_all(client, fake)

    payment = Payment.objects.get()
    assert (payment.amount, payment.needs_review) == (Decimal("50.00"), ReviewReason.LINK_ENDED)
    bill.refresh_from_db()
    assert bill.state == BillState.CLOSED


def test_two_tabs_paying_the_whole_balance_record_both_and_flag_the_second(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    bill = campaign(organization, "80.00")
    _l, first = start(bill, "80.00")
    _l, second = start(bill, "80.00")
    fake.complete(first.session_id)
    fake.complete(second.session_id)

    deliver_all(client, fake)

    payments = list(Payment.objects.order_by("pk"))
    assert [p.needs_review for p in payments] == ["", ReviewReason.LINK_ENDED]
    bill.refresh_from_db()
    assert (bill.amount_due, bill.state) == (Decimal("-80.00"), BillState.PAID)


def test_a_payment_above_what_is_owed_by_then_is_flagged_overpaid(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    bill = campaign(organization, "80.00")
    _l, checkout = start(bill, "80.00")
    Bill.objects.filter(pk=bill.pk).update(amount_due=Decimal("30.00"))  # an adjustment in the PMS meanwhile
    fake.complete(checkout.session_id)

    deliver_all(client, fake)

    assert Payment.objects.get().needs_review == ReviewReason.OVERPAID


def test_events_of_other_integrations_and_types_are_acknowledged_and_ignored(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    other = {"id": "evt_x1", "object": "event", "type": "customer.created", "created": 1,
             "data": {"object": {"id": "cus_1", "object": "customer"}}}  # fmt: skip
    stranger = {"id": "evt_x2", "object": "event", "type": "checkout.session.completed", "created": 1,
                "data": {"object": {"id": "cs_1", "object": "checkout.session", "mode": "payment",
                                    "payment_status": "paid", "amount_total": 100, "client_reference_id": "chk_nope",
                                    "payment_intent": "pi_1", "metadata": {}}}}  # fmt: skip

    assert json.loads(post(client, fake, other).content)["outcome"] == "ignored"
    assert json.loads(post(client, fake, stranger).content)["outcome"] == "not a checkout of ours"
    assert not Payment.objects.exists()


# H3: refunds and disputes


def test_a_refund_made_in_the_processors_dashboard_is_recorded_from_charge_refunded(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    bill = campaign(organization, "150.00")
    payment = pay(client, fake, bill, "150.00")
    intent = payment.processor_reference
    charge = fake.payment_intents[intent]["latest_charge"]
    status, answer = fake._refund_create({"payment_intent": intent, "amount": "2500"})  # Refund, at Stripe
    assert status == 200 and answer["charge"] == charge

    # charge.refunded records it from the running total; refund.created then gives that row the refund's id.
    assert deliver_all(client, fake) == [200, 200]
    assert post(client, fake, fake.event_of("charge.refunded")).status_code == 200  # a retry
    assert post(client, fake, fake.event_of("refund.created")).status_code == 200

    refund = Payment.objects.get(kind=PaymentKind.REFUND)
    assert (refund.amount, refund.refund_of, refund.processor_reference, refund.status) == (
        Decimal("-25.00"), payment, answer["id"], PaymentStatus.SUCCEEDED,
    )  # fmt: skip
    bill.refresh_from_db()
    assert (bill.amount_due, bill.state, bill.ended_at) == (Decimal("25.00"), BillState.ACTIVE, None)


def test_a_refund_made_here_is_not_counted_again_when_its_event_arrives(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    bill = campaign(organization, "150.00")
    payment = pay(client, fake, bill, "100.00")

    payment_refund(payment=payment, amount=Decimal("30.00"), actor_label="test")
    assert deliver_all(client, fake) == [200, 200]  # charge.refunded (amount_refunded 3000), refund.created

    assert list(Payment.objects.filter(kind=PaymentKind.REFUND).values_list("amount", flat=True)) == [
        Decimal("-30.00")
    ]
    bill.refresh_from_db()
    assert bill.amount_due == Decimal("80.00")


def test_a_dispute_reopens_the_amount_and_asks_for_review(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    bill = campaign(organization, "60.00")
    payment = pay(client, fake, bill, "60.00")
    bill.refresh_from_db()
    assert bill.state == BillState.PAID

    fake.dispute(payment.processor_reference)
    assert deliver_all(client, fake) == [200]
    assert post(client, fake, fake.event_of("charge.dispute.created")).status_code == 200

    dispute = Payment.objects.get(kind=PaymentKind.DISPUTE)
    assert (dispute.amount, dispute.refund_of, dispute.needs_review) == (
        Decimal("-60.00"),
        payment,
        ReviewReason.DISPUTED,
    )
    bill.refresh_from_db()
    assert (bill.amount_due, bill.state, bill.next_dunning_date) == (Decimal("60.00"), BillState.ACTIVE, None)


def test_a_refund_on_a_paid_campaign_goes_to_the_guarantors_newer_campaign(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    """B2 allows one active request campaign per guarantor: the money owed again joins the open one."""
    old = campaign(organization, "60.00")
    payment = pay(client, fake, old, "60.00")
    now = datetime.now(UTC)
    newer = Bill.objects.create(
        organization=organization, guarantor=old.guarantor, bill_id="R-NEW", source=BillSource.REQUEST,
        amount_due=Decimal("20.00"), created_at=now, effective_created_date=now.date(), last_seen_at=now,
    )  # fmt: skip
    PaymentRequest.objects.create(organization=organization, guarantor=old.guarantor, bill=newer,
                                  mode=RequestMode.SINGLE, requested_at=now, request_date=now.date())  # fmt: skip

    payment_refund(payment=payment, amount=Decimal("15.00"), actor_label="test")

    old.refresh_from_db()
    newer.refresh_from_db()
    assert (old.state, old.amount_due) == (BillState.PAID, Decimal("0.00"))
    assert newer.amount_due == Decimal("35.00")


# Concurrency (PostgreSQL's unique index and row locks)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_deliveries_of_every_event_of_a_payment_count_it_once(fake: FakeStripe) -> None:
    organization = OrganizationFactory.create(slug="race", timezone="UTC")
    bill = campaign(organization, "90.00")
    _link, checkout = start(bill, "90.00")
    fake.complete(checkout.session_id)
    events = [
        Event(id=e["id"], type=e["type"], created=e["created"], object=e["data"]["object"])
        for e in fake.pending
    ]

    results = in_threads(
        *[lambda e=e: processor_event_apply(processor="stripe", event=e) for e in events * 4]
    )

    assert all(not isinstance(r, Exception) for r in results), results
    assert sum(1 for r in results if not r.duplicate) == 2
    assert Payment.objects.count() == 1
    bill.refresh_from_db()
    assert (bill.amount_due, bill.state) == (Decimal("0.00"), BillState.PAID)
