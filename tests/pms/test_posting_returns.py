"""H3 with C3: refunds, disputes and their reversals are posted back to Open Dental by sync_pms as payments with a
signed PayAmt on the guarantor, each exactly once, after the payment they return, with the same crash-safety as
payments (the reference in the note, looked for before any second try).

The money moves through the fake Stripe server and its signed events (tests/fakes/stripe_server.py,
https://docs.stripe.com/api/refunds/object, https://docs.stripe.com/api/disputes/object); what Open Dental
received is read from the fake Open Dental's log (tests/fakes/opendental_server.py). Open Dental's Payments POST
takes PatNum, PayAmt (a negative amount is a refund), PayDate and PayNote, and gives API payments the PayType of
its ApiPaymentType preference; Payments GET by PatNum and DateEntry finds an earlier try
(https://www.opendental.com/site/apipayments.html)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client

from payments.checkout import checkout_begin
from payments.links import payment_link_create
from payments.models import Payment, PaymentKind, PaymentLink
from payments.refunds import payment_refund
from pms import posting
from pms.models import Connection, PaymentPost, PostState
from pms.services import pms_sync
from practices.models import Bill, BillSource, Organization, Patient
from tests.fakes.opendental_server import FakeOpenDental
from tests.fakes.stripe_server import FakeStripe
from tests.pms.conftest import SYNC_AT

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe(settings: Any) -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        settings.PAYMENT_PROCESSOR = "stripe"
        settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = server.secret_key, server.webhook_secret
        settings.STRIPE_API_BASE_URL = server.base_url
        yield server


@pytest.fixture
def smith(fake: FakeOpenDental, org: Organization) -> Patient:
    """A family that owes 200 on a statement, mirrored by a first sync."""
    head = fake.add_family(LName="Smith", aging={"Bal_31_60": 150.0, "BalOver90": 50.0}, dependents=1)
    fake.add_statement(head["PatNum"], BalTotal=200.0, InsEst=0.0, DateSent="2026-11-20")
    fake.advance(minutes=1)
    pms_sync(organization=org, now=SYNC_AT)
    # From here on the office's clock is today's, as it is when payments are posted (DateEntry is its date).
    fake.now = datetime.now(org.tzinfo).replace(tzinfo=None, microsecond=0)
    return Patient.objects.get(organization=org, external_id=str(head["PatNum"]))


def deliver(client: Client, stripe: FakeStripe) -> None:
    while stripe.pending:
        body, header = stripe.signed(stripe.pending.popleft())
        answer = client.post(
            "/webhooks/stripe/", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )
        assert answer.status_code == 200


def pay(client: Client, stripe: FakeStripe, patient: Patient, amount: str) -> Payment:
    bill = Bill.objects.get(guarantor=patient, source=BillSource.STATEMENT)
    link = PaymentLink.objects.filter(bill=bill).first() or payment_link_create(bill=bill)[0]
    checkout, _url = checkout_begin(
        link=link, amount=Decimal(amount), success_url=lambda ref: f"http://testserver/done/{ref}/",
        cancel_url="http://testserver/cancelled/",
    )  # fmt: skip
    stripe.complete(checkout.session_id)
    deliver(client, stripe)
    return Payment.objects.get(checkout=checkout)


def sync() -> tuple[int, dict[str, Any]]:
    out = StringIO()
    try:
        call_command("sync_pms", "--org", "smile-dental", "--json", stdout=out, stderr=StringIO())
        code = 0
    except CommandError as exc:
        code = exc.returncode
    return code, json.loads(out.getvalue())


def posted(fake: FakeOpenDental) -> list[dict[str, Any]]:
    """The bodies of the Payments POSTs Open Dental received, in order."""
    return [r.body for r in fake.received("POST", "/payments")]


def test_a_refund_is_posted_once_as_a_negative_payment_after_the_payment_it_returns(
    client: Client, stripe: FakeStripe, fake: FakeOpenDental, org: Organization, smith: Patient
) -> None:
    payment = pay(client, stripe, smith, "75.00")
    refund = payment_refund(payment=payment, amount=Decimal("25.00"), actor_label="test")
    deliver(client, stripe)

    code, document = sync()

    assert code == 0 and document["payments"] == {"posted": 2, "found": 0, "failed": 0, "pending": 0}
    first, second = posted(fake)
    payment_post, refund_post = (
        PaymentPost.objects.get(payment=payment),
        PaymentPost.objects.get(payment=refund),
    )
    assert (first["PatNum"], first["PayAmt"]) == (int(smith.external_id), "75.00")
    assert (second["PatNum"], second["PayAmt"]) == (int(smith.external_id), "-25.00")
    assert second["PayNote"].endswith(f"ref {refund_post.reference}")
    assert (
        f"online payment {payment_post.reference} (PayNum {payment_post.pms_payment_id})" in second["PayNote"]
    )
    assert second["PayNote"].startswith("Refund")
    assert "PayType" not in second  # Open Dental's ApiPaymentType preference, as for the payment
    assert [p["PayAmt"] for p in fake.payments] == ["75", "-25"]
    assert (refund_post.state, refund_post.attempts) == (PostState.POSTED, 1)

    assert sync()[1]["payments"]["posted"] == 0
    assert len(posted(fake)) == 2


def test_sync_pms_posts_a_refund_once_even_after_a_crash_between_the_post_and_our_record(
    client: Client, stripe: FakeStripe, fake: FakeOpenDental, org: Organization, smith: Patient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    payment = pay(client, stripe, smith, "100.00")
    assert sync()[1]["payments"]["posted"] == 1
    refund = payment_refund(payment=payment, amount=Decimal("40.00"), actor_label="test")
    deliver(client, stripe)
    real = posting._mark_posted

    def crash(*args: object, **kwargs: object) -> None:
        raise SystemExit("killed")  # the process dies after Open Dental created the refund, before our record

    monkeypatch.setattr(posting, "_mark_posted", crash)
    with pytest.raises(SystemExit):
        sync()
    post = PaymentPost.objects.get(payment=refund)
    assert (post.state, post.attempts) == (PostState.PENDING, 1)
    assert [p["PayAmt"] for p in fake.payments] == ["100", "-40"]

    monkeypatch.setattr(posting, "_mark_posted", real)
    with time_machine.travel(
        datetime.now(org.tzinfo) + posting.LEASE + timedelta(minutes=1)
    ):  # the lease ran out
        code, document = sync()

    assert code == 0 and document["payments"]["found"] == 1 and document["payments"]["posted"] == 0
    assert [p["PayAmt"] for p in fake.payments] == ["100", "-40"]
    assert [b["PayAmt"] for b in posted(fake)] == ["100.00", "-40.00"]
    looked = fake.received("GET", "/payments")
    assert looked and looked[-1].params["PatNum"] == smith.external_id
    post.refresh_from_db()
    assert (post.state, post.pms_payment_id) == (PostState.POSTED, str(fake.payments[1]["PayNum"]))


def test_a_pending_refund_is_posted_only_once_it_succeeded(
    client: Client, stripe: FakeStripe, fake: FakeOpenDental, org: Organization, smith: Patient
) -> None:
    payment = pay(client, stripe, smith, "50.00")
    stripe.refund_status = "pending"
    refund = payment_refund(payment=payment, amount=Decimal("50.00"), actor_label="test")
    deliver(client, stripe)

    assert sync()[1]["payments"]["posted"] == 1
    assert [b["PayAmt"] for b in posted(fake)] == ["50.00"]

    stripe.refund_settle(refund.processor_reference, status="succeeded")
    deliver(client, stripe)
    assert sync()[1]["payments"]["posted"] == 1
    assert [b["PayAmt"] for b in posted(fake)] == ["50.00", "-50.00"]


def test_a_failed_refund_is_never_posted(
    client: Client, stripe: FakeStripe, fake: FakeOpenDental, org: Organization, smith: Patient
) -> None:
    payment = pay(client, stripe, smith, "50.00")
    stripe.refund_status = "pending"
    refund = payment_refund(payment=payment, amount=Decimal("20.00"), actor_label="test")
    stripe.refund_settle(refund.processor_reference, status="failed")
    deliver(client, stripe)

    sync()
    sync()

    assert [b["PayAmt"] for b in posted(fake)] == ["50.00"]
    assert not PaymentPost.objects.filter(payment=refund).exists()


def test_a_dispute_and_the_dispute_won_are_posted_negative_then_positive(
    client: Client, stripe: FakeStripe, fake: FakeOpenDental, org: Organization, smith: Patient
) -> None:
    payment = pay(client, stripe, smith, "60.00")
    opened = stripe.dispute(payment.processor_reference)
    deliver(client, stripe)
    assert sync()[1]["payments"]["posted"] == 2

    stripe.dispute_close(opened["id"], status="won")
    deliver(client, stripe)
    assert sync()[1]["payments"]["posted"] == 1

    payment_in, dispute_in, reversal_in = posted(fake)
    dispute_post = PaymentPost.objects.get(payment__kind=PaymentKind.DISPUTE)
    assert [b["PayAmt"] for b in (payment_in, dispute_in, reversal_in)] == ["60.00", "-60.00", "60.00"]
    assert dispute_in["PayNote"].startswith("Card dispute (chargeback) of online payment")
    assert reversal_in["PayNote"].startswith(f"Dispute won: reverses the return {dispute_post.reference}")
    assert sum(Decimal(p["PayAmt"]) for p in fake.payments) == Decimal("60")


def test_a_refund_of_a_payment_open_dental_refused_is_failed_for_staff_too(
    client: Client, stripe: FakeStripe, fake: FakeOpenDental, org: Organization, smith: Patient
) -> None:
    payment = pay(client, stripe, smith, "30.00")
    refund = payment_refund(payment=payment, amount=Decimal("30.00"), actor_label="test")
    deliver(client, stripe)
    fake.update_patient(int(smith.external_id), PatStatus="Deleted")

    _code, document = sync()

    assert document["payments"]["failed"] == 2
    assert len(posted(fake)) == 1  # the payment was tried and refused; the refund was not sent
    post = PaymentPost.objects.get(payment=refund)
    assert (
        post.state == PostState.FAILED
        and f"of payment {payment.pk}, which Open Dental refused" in post.last_error
    )


def test_a_refund_of_a_payment_from_before_the_connection_is_left_to_export_payments(
    client: Client, stripe: FakeStripe, fake: FakeOpenDental, org: Organization, smith: Patient
) -> None:
    payment = pay(client, stripe, smith, "30.00")
    Connection.objects.filter(organization=org).update(
        posting_starts_at=payment.created_at + timedelta(seconds=1)
    )
    payment_refund(payment=payment, amount=Decimal("10.00"), actor_label="test")
    deliver(client, stripe)

    sync()

    assert posted(fake) == []
