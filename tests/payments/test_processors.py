"""The processor seam (H1-H5): Stripe through the real SDK against the fake Stripe server, and the sandbox.

Each operation is checked by what reached the processor (the fake's request log, in Stripe's documented
parameters) and what came back; signatures are made by the fake from Stripe's scheme itself
(https://docs.stripe.com/webhooks#verify-manually), not by the SDK that verifies them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from payments.models import SandboxEvent, SandboxSession
from payments.processors import get_processor
from payments.processors.base import (
    CardSaveRequest,
    CheckoutRequest,
    ProcessorError,
    SavedCard,
    SignatureInvalid,
    from_cents,
    to_cents,
)
from payments.processors.sandbox import (
    DECLINING_PAYMENT_METHOD,
    SandboxProcessor,
    hosted_outcome,
    webhook_secret,
)
from payments.processors.stripe_api import StripeProcessor
from tests.fakes.stripe_server import DECLINING_PAYMENT_METHOD as STRIPE_DECLINING
from tests.fakes.stripe_server import FakeStripe, sign


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


@pytest.fixture
def stripe(fake: FakeStripe) -> StripeProcessor:
    return StripeProcessor(
        secret_key=fake.secret_key, webhook_secret=fake.webhook_secret, api_base=fake.base_url,
        max_network_retries=0,
    )  # fmt: skip


def checkout_request(reference: str = "chk_1", cents: int = 12_345) -> CheckoutRequest:
    return CheckoutRequest(
        reference=reference, amount_cents=cents, description="Smile Dental: payment on account",
        success_url="https://pay.example.org/p/t/checkout/chk_1/", cancel_url="https://pay.example.org/p/t/cancelled/",
        metadata={"organization": "smile-dental"},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("amount", "cents"),
    [(Decimal("0.01"), 1), (Decimal("19.99"), 1999), (Decimal("1234.50"), 123450), (Decimal("0.30"), 30)],
)
def test_money_crosses_the_seam_in_exact_cents(amount: Decimal, cents: int) -> None:
    assert to_cents(amount) == cents
    assert from_cents(cents) == amount


def test_a_fraction_of_a_cent_is_refused() -> None:
    with pytest.raises(ValueError):
        to_cents(Decimal("10.005"))


# Stripe


def test_a_checkout_session_is_created_for_the_amount_with_our_reference(
    fake: FakeStripe, stripe: StripeProcessor
) -> None:
    page = stripe.checkout_start(request=checkout_request())

    [call] = fake.api_calls("POST", "/v1/checkout/sessions")
    params = call["params"]
    assert params["mode"] == "payment"
    assert params["line_items"] == [
        {"quantity": "1", "price_data": {"currency": "usd", "unit_amount": "12345",
                                         "product_data": {"name": "Smile Dental: payment on account"}}}
    ]  # fmt: skip
    assert params["client_reference_id"] == "chk_1"
    assert params["payment_intent_data"]["metadata"] == {"checkout": "chk_1", "organization": "smile-dental"}
    assert params["success_url"].endswith("/checkout/chk_1/")
    assert call["idempotency_key"] == "checkout-chk_1"
    assert page.session_id.startswith("cs_test_")
    assert page.url == f"{fake.base_url}/checkout/{page.session_id}"


def test_the_session_is_started_once_however_often_the_request_is_retried(
    fake: FakeStripe, stripe: StripeProcessor
) -> None:
    first = stripe.checkout_start(request=checkout_request())
    again = stripe.checkout_start(request=checkout_request())

    assert again == first
    assert len(fake.sessions) == 1


def test_stripe_down_is_an_unavailable_processor_not_a_crash(
    fake: FakeStripe, stripe: StripeProcessor
) -> None:
    fake.fail_next(status=503)

    with pytest.raises(ProcessorError) as excinfo:
        stripe.checkout_start(request=checkout_request())

    assert excinfo.value.unavailable


def test_a_refused_request_is_not_unavailable(fake: FakeStripe) -> None:
    wrong_key = StripeProcessor(
        secret_key="sk_test_wrong", webhook_secret="x", api_base=fake.base_url, max_network_retries=0
    )

    with pytest.raises(ProcessorError) as excinfo:
        wrong_key.checkout_start(request=checkout_request())

    assert not excinfo.value.unavailable


def test_an_event_signed_with_the_endpoint_secret_is_verified_and_parsed(
    fake: FakeStripe, stripe: StripeProcessor
) -> None:
    page = stripe.checkout_start(request=checkout_request())
    fake.complete(page.session_id)
    body, header = fake.signed(fake.event_of("checkout.session.completed"))

    event = stripe.event_verify(payload=body, signature=header)

    assert event.type == "checkout.session.completed"
    assert event.id.startswith("evt_")
    assert event.object["amount_total"] == 12_345
    assert event.object["client_reference_id"] == "chk_1"
    assert event.object["payment_intent"].startswith("pi_")


@pytest.mark.parametrize("case", ["unsigned", "wrong secret", "tampered", "stale", "no v1", "garbage"])
def test_an_event_not_signed_by_the_endpoint_is_refused(
    fake: FakeStripe, stripe: StripeProcessor, case: str
) -> None:
    page = stripe.checkout_start(request=checkout_request())
    fake.complete(page.session_id)
    event = fake.event_of("checkout.session.completed")
    body, header = fake.signed(event)
    if case == "unsigned":
        header = ""
    elif case == "wrong secret":
        body, header = fake.signed(event, secret="whsec_someone_else")
    elif case == "tampered":
        body = body.replace(b"12345", b"99999")
    elif case == "stale":
        body, header = fake.signed(event, timestamp=int(time.time()) - 301)
    elif case == "no v1":
        header = header.replace("v1=", "v0=")
    else:
        header = "t=abc,v1=nothing"

    with pytest.raises(SignatureInvalid):
        stripe.event_verify(payload=body, signature=header)


def test_a_signed_body_that_is_not_an_event_is_refused(stripe: StripeProcessor, fake: FakeStripe) -> None:
    body = json.dumps({"hello": "world"})

    with pytest.raises(SignatureInvalid):
        stripe.event_verify(payload=body.encode(), signature=sign(body, fake.webhook_secret))


def test_a_refund_goes_to_the_payment_intent_whole_or_in_part(
    fake: FakeStripe, stripe: StripeProcessor
) -> None:
    page = stripe.checkout_start(request=checkout_request(cents=5000))
    intent = fake.complete(page.session_id)["payment_intent"]

    part = stripe.refund(
        payment_reference=intent,
        amount_cents=1250,
        idempotency_key="refund-1-0-1250",
        metadata={"payment": "1"},
    )
    rest = stripe.refund(
        payment_reference=intent,
        amount_cents=3750,
        idempotency_key="refund-1-1250-3750",
        metadata={"payment": "1"},
    )

    assert (part.amount_cents, part.status, rest.amount_cents) == (1250, "succeeded", 3750)
    calls = fake.api_calls("POST", "/v1/refunds")
    assert [c["params"]["amount"] for c in calls] == ["1250", "3750"]
    assert calls[0]["params"]["payment_intent"] == intent
    assert fake.event_of("charge.refunded")["data"]["object"]["amount_refunded"] == 5000
    with pytest.raises(ProcessorError) as excinfo:
        stripe.refund(
            payment_reference=intent, amount_cents=1, idempotency_key="refund-1-5000-1", metadata={}
        )
    assert not excinfo.value.unavailable


def test_a_retried_refund_with_its_key_refunds_once(fake: FakeStripe, stripe: StripeProcessor) -> None:
    intent = fake.complete(stripe.checkout_start(request=checkout_request(cents=5000)).session_id)[
        "payment_intent"
    ]

    first = stripe.refund(payment_reference=intent, amount_cents=1000, idempotency_key="k", metadata={})
    second = stripe.refund(payment_reference=intent, amount_cents=1000, idempotency_key="k", metadata={})

    assert first == second
    assert len(fake.refunds) == 1


def test_a_card_is_saved_in_setup_mode_and_charged_off_session(
    fake: FakeStripe, stripe: StripeProcessor
) -> None:
    page = stripe.card_save_start(
        request=CardSaveRequest(reference="plan_1", description="Smile Dental: payment plan",
                                success_url="https://pay.example.org/ok", cancel_url="https://pay.example.org/no")
    )  # fmt: skip
    session = fake.complete(page.session_id)
    [create] = fake.api_calls("POST", "/v1/checkout/sessions")
    assert (create["params"]["mode"], create["params"]["customer"].startswith("cus_")) == ("setup", True)

    card = stripe.saved_card(setup_reference=session["setup_intent"])
    charge = stripe.charge_saved_card(
        card=card, amount_cents=2500, idempotency_key="installment-7-1", description="Installment 1 of 4",
        metadata={"installment": "7-1"},
    )  # fmt: skip

    assert card.customer == create["params"]["customer"]
    assert charge.succeeded and charge.amount_cents == 2500 and charge.payment_reference.startswith("pi_")
    [pay] = fake.api_calls("POST", "/v1/payment_intents")
    assert {k: pay["params"][k] for k in ("off_session", "confirm", "customer", "payment_method", "amount")} == {
        "off_session": "true", "confirm": "true", "customer": card.customer, "payment_method": card.payment_method,
        "amount": "2500",
    }  # fmt: skip
    assert pay["idempotency_key"] == "installment-7-1"


def test_a_saved_card_that_declines_off_session_is_an_answer_not_an_error(
    fake: FakeStripe, stripe: StripeProcessor
) -> None:
    page = stripe.card_save_start(
        request=CardSaveRequest(
            reference="plan_2", description="x", success_url="https://a/ok", cancel_url="https://a/no"
        )
    )
    session = fake.complete(page.session_id, payment_method=STRIPE_DECLINING)
    card = stripe.saved_card(setup_reference=session["setup_intent"])

    charge = stripe.charge_saved_card(
        card=card, amount_cents=2500, idempotency_key="i", description="x", metadata={}
    )

    assert not charge.succeeded
    assert charge.payment_reference.startswith("pi_")
    assert "declined" in charge.message
    assert fake.event_of("payment_intent.payment_failed")["data"]["object"]["id"] == charge.payment_reference


def test_a_setup_session_not_completed_has_no_saved_card(fake: FakeStripe, stripe: StripeProcessor) -> None:
    page = stripe.card_save_start(
        request=CardSaveRequest(
            reference="plan_3", description="x", success_url="https://a/ok", cancel_url="https://a/no"
        )
    )

    with pytest.raises(ProcessorError):
        stripe.saved_card(setup_reference=fake.sessions[page.session_id]["setup_intent"])


def test_stripe_is_chosen_by_payment_processor_and_needs_its_secret_key(settings, fake: FakeStripe) -> None:
    settings.PAYMENT_PROCESSOR = "stripe"
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = fake.secret_key, fake.webhook_secret
    settings.STRIPE_API_BASE_URL = fake.base_url

    assert get_processor().name == "stripe"
    assert get_processor("sandbox").name == "sandbox"
    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="STRIPE_SECRET_KEY"):
        get_processor()


def test_the_sandbox_is_the_default(settings) -> None:
    settings.PAYMENT_PROCESSOR = "sandbox"

    assert isinstance(get_processor(), SandboxProcessor)


# Sandbox


@pytest.mark.django_db
def test_the_sandbox_serves_its_own_hosted_page_and_signs_stripe_shaped_events() -> None:
    sandbox = SandboxProcessor()
    page = sandbox.checkout_start(request=checkout_request(cents=4200))

    assert page.url == f"/sandbox/checkout/{page.session_id}/"
    session, _ = hosted_outcome(
        session_id=page.session_id, outcome="pay", webhook_url="http://testserver/webhooks/sandbox/"
    )

    events = [json.loads(e.payload) for e in SandboxEvent.objects.order_by("created_at", "id")]
    assert {e["type"] for e in events} == {"payment_intent.succeeded", "checkout.session.completed"}
    completed = next(e for e in events if e["type"] == "checkout.session.completed")["data"]["object"]
    assert (completed["amount_total"], completed["payment_status"], completed["client_reference_id"]) == (
        4200,
        "paid",
        "chk_1",
    )
    assert completed["payment_intent"] == session.payment_intent
    body = SandboxEvent.objects.first().payload  # type: ignore[union-attr]
    verified = sandbox.event_verify(payload=body.encode(), signature=sign(body, webhook_secret()))
    assert verified.id.startswith("evt_sbx_")
    with pytest.raises(SignatureInvalid):
        sandbox.event_verify(payload=body.encode(), signature=sign(body, "whsec_not_the_sandbox"))


@pytest.mark.django_db
def test_a_declined_card_on_the_sandbox_page_keeps_the_session_open() -> None:
    sandbox = SandboxProcessor()
    page = sandbox.checkout_start(request=checkout_request(cents=4200))

    session, message = hosted_outcome(
        session_id=page.session_id, outcome="decline", webhook_url="http://t/w/"
    )

    assert session.status == "open"
    assert "declined" in message
    [event] = [json.loads(e.payload) for e in SandboxEvent.objects.all()]
    assert event["type"] == "payment_intent.payment_failed"
    hosted_outcome(session_id=page.session_id, outcome="pay", webhook_url="http://t/w/")
    with pytest.raises(ProcessorError):
        hosted_outcome(session_id=page.session_id, outcome="pay", webhook_url="http://t/w/")


@pytest.mark.django_db
def test_the_sandbox_refunds_what_was_paid_and_no_more() -> None:
    sandbox = SandboxProcessor()
    page = sandbox.checkout_start(request=checkout_request(cents=5000))
    session, _ = hosted_outcome(session_id=page.session_id, outcome="pay", webhook_url="http://t/w/")

    first = sandbox.refund(
        payment_reference=session.payment_intent, amount_cents=3000, idempotency_key="a", metadata={}
    )

    assert (first.amount_cents, first.status) == (3000, "succeeded")
    with pytest.raises(ProcessorError):
        sandbox.refund(
            payment_reference=session.payment_intent, amount_cents=2001, idempotency_key="b", metadata={}
        )
    assert SandboxSession.objects.get(pk=session.pk).amount_refunded_cents == 3000


@pytest.mark.django_db
def test_the_sandbox_saves_a_card_and_charges_it_off_session_once_per_key() -> None:
    sandbox = SandboxProcessor()
    page = sandbox.card_save_start(
        request=CardSaveRequest(reference="plan_1", description="x", success_url="/ok", cancel_url="/no")
    )
    session, _ = hosted_outcome(session_id=page.session_id, outcome="save", webhook_url="http://t/w/")
    card = sandbox.saved_card(setup_reference=session.setup_intent)

    first = sandbox.charge_saved_card(
        card=card, amount_cents=2500, idempotency_key="inst-1", description="x", metadata={"i": "1"}
    )
    again = sandbox.charge_saved_card(
        card=card, amount_cents=2500, idempotency_key="inst-1", description="x", metadata={"i": "1"}
    )

    assert first.succeeded and first == again
    assert SandboxSession.objects.filter(mode="charge").count() == 1
    kinds = [json.loads(e.payload)["type"] for e in SandboxEvent.objects.order_by("created_at", "id")]
    assert kinds == ["checkout.session.completed", "payment_intent.succeeded"]
    with pytest.raises(ProcessorError):
        sandbox.charge_saved_card(card=SavedCard(customer=card.customer, payment_method="pm_other"), amount_cents=1,
                                  idempotency_key="x", description="x", metadata={})  # fmt: skip


@pytest.mark.django_db
def test_a_sandbox_card_saved_as_declining_declines_when_charged() -> None:
    sandbox = SandboxProcessor()
    page = sandbox.card_save_start(
        request=CardSaveRequest(reference="p", description="x", success_url="/ok", cancel_url="/no")
    )
    session, _ = hosted_outcome(
        session_id=page.session_id, outcome="save_declining", webhook_url="http://t/w/"
    )
    card = sandbox.saved_card(setup_reference=session.setup_intent)

    charge = sandbox.charge_saved_card(
        card=card, amount_cents=2500, idempotency_key="k", description="x", metadata={}
    )

    assert card.payment_method == DECLINING_PAYMENT_METHOD
    assert not charge.succeeded and "declined" in charge.message
