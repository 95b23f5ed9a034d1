"""A patient on a phone (390 px), in a real browser, by role and label: open the payment link, confirm the date of
birth, choose an amount, pay on the processor's hosted page, come back to "processing" and then the receipt
(P1-P3, H1, H2, H4). The embedded default's sandbox page, and Stripe's path with the fake Stripe server
(tests/fakes/stripe_server.py) standing in for checkout.stripe.com and its webhook."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from payments.links import payment_link_create
from payments.models import Payment, PaymentStatus
from practices.models import Bill, BillState
from tests.factories import AccountFactory, GuarantorFactory, OrganizationFactory
from tests.fakes.stripe_server import FakeStripe

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # pytest-playwright 0.10's base_url fixture under pytest 9 (harmless, ECOSYSTEM.md §8).
    pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning"),
]

PHONE_VIEWPORT = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def _no_receipt_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    # As tests/browser/conftest.py does for the outbox: no broker here; the receipt task is tested on its own.
    monkeypatch.setattr("payments.tasks.receipt_email.delay", lambda payment_id: None)


def _scroll_width(page: Page) -> int:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert isinstance(width, int)
    return width


def _link_for(
    live_server: Any, *, amount: str, buckets: dict[str, str], phone: str = "+18015550199"
) -> tuple[Bill, str]:
    org = OrganizationFactory.create(
        slug="smile-dental", name="Smile Dental", timezone="America/Denver", phone=phone
    )
    guarantor = GuarantorFactory.create(organization=org, first_name="Marisol", last_name="Quintanilla",
                                        date_of_birth=date(1980, 4, 12))  # fmt: skip
    AccountFactory.create(
        guarantor=guarantor, total=Decimal(amount), patient_portion=Decimal(amount), aging_category="31_60",
        **{f"bucket_{key}": Decimal(value) for key, value in buckets.items()},
    )  # fmt: skip
    now = timezone.now()
    bill = Bill.objects.create(
        organization=org, guarantor=guarantor, bill_id="REQ-1", source="request", state="active",
        amount_due=Decimal(amount), created_at=now, effective_created_date=now.date(), last_seen_at=now,
    )  # fmt: skip
    _link, url = payment_link_create(bill=bill)
    return bill, f"{live_server.url}/{url.split('://', 1)[1].split('/', 1)[1]}"


def _confirm_identity(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name="Confirm your identity")).to_be_visible()
    expect(page.get_by_text("Marisol")).to_have_count(0)  # nothing about the patient before the check (P2)
    page.get_by_label("Date of birth (MM/YYYY)").fill("05/1980")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_have_text("We could not verify those details.")
    page.get_by_label("Date of birth (MM/YYYY)").fill("04/1980")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Hello Marisol")).to_be_visible()


def _choose(page: Page, amount: str) -> None:
    page.get_by_label("Amount ($)").fill(amount)
    page.get_by_role("button", name="Continue to secure payment").click()


@pytest.fixture
def slow_sandbox_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox's confirmation arrives 1.5 s after the patient is back, so "processing" is on screen first."""
    monkeypatch.setattr("payments.processors.sandbox.DELIVERY_RETRIES", (1.5, 1.0, 3.0))


@pytest.mark.browser_context_args(viewport=PHONE_VIEWPORT)
def test_the_whole_patient_path_on_the_sandbox_processor(
    page: Page, live_server: Any, settings: Any, slow_sandbox_webhook: None
) -> None:
    settings.PAYMENT_PROCESSOR = "sandbox"
    bill, url = _link_for(live_server, amount="11150.00", buckets={"0_30": "10000.00", "31_60": "1150.00"})
    widths: dict[str, int] = {}

    _confirm_identity(page, url)
    widths["pay"] = _scroll_width(page)
    expect(page.get_by_label("Card number")).to_have_count(0)  # no card field of ours (SAQ A)
    _choose(page, "11150.01")
    expect(page.get_by_text("The amount cannot be more than the amount due ($11,150.00).")).to_be_visible()
    _choose(page, "10000.00")

    expect(page.get_by_text("Sandbox processor: test mode.")).to_be_visible()
    expect(page.get_by_role("heading", name="Pay $10,000.00")).to_be_visible()
    widths["hosted page"] = _scroll_width(page)
    page.get_by_role("button", name="Try a test card that is declined").click()
    expect(page.get_by_role("alert")).to_contain_text("Your card was declined")
    page.get_by_role("button", name="Pay $10,000.00 with the test card").click()

    expect(page.get_by_role("heading", name="Processing your payment")).to_be_visible()
    widths["processing"] = _scroll_width(page)
    assert not Payment.objects.exists()  # nothing is recorded before the signed confirmation
    expect(page.get_by_role("heading", name="Thank you, your payment was received")).to_be_visible(
        timeout=15_000
    )
    widths["receipt"] = _scroll_width(page)
    amount = page.get_by_role("cell", name="$10,000.00")
    box = amount.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE_VIEWPORT["width"]  # not cut off at the edge
    expect(page.get_by_role("row", name="Remaining balance $1,150.00")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the receipt (PDF)").click()
    assert download.value.suggested_filename.endswith(".pdf")

    payment = Payment.objects.get()
    assert (payment.amount, payment.status, payment.processor) == (
        Decimal("10000.00"),
        PaymentStatus.SUCCEEDED,
        "sandbox",
    )
    expect(page.get_by_text(payment.processor_reference)).to_be_visible()

    page.goto(url)  # the rest, still verified
    expect(page.get_by_role("row", name="31–60 days $0.00")).to_be_visible()  # paid oldest first
    _choose(page, "1150.00")
    page.get_by_role("button", name="Pay $1,150.00 with the test card").click()
    expect(page.get_by_text("Your balance is paid in full.")).to_be_visible(timeout=15_000)
    widths["receipt, paid in full"] = _scroll_width(page)
    bill.refresh_from_db()
    assert bill.state == BillState.PAID
    page.goto(url)
    expect(page.get_by_role("heading", name="This payment link is not available")).to_be_visible()
    widths["link unavailable"] = _scroll_width(page)

    assert {name: width for name, width in widths.items() if width > 390} == {}


@pytest.fixture
def fake_stripe(settings: Any, live_server: Any) -> Iterator[FakeStripe]:
    with FakeStripe(auto_deliver=False) as fake:
        settings.PAYMENT_PROCESSOR = "stripe"
        settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = fake.secret_key, fake.webhook_secret
        settings.STRIPE_API_BASE_URL = fake.base_url
        fake.webhook_url = f"{live_server.url}/webhooks/stripe/"
        yield fake


@pytest.mark.browser_context_args(viewport=PHONE_VIEWPORT)
def test_the_whole_patient_path_on_stripe_checkout(
    page: Page, live_server: Any, fake_stripe: FakeStripe
) -> None:
    bill, url = _link_for(live_server, amount="150.00", buckets={"0_30": "40.00", "31_60": "110.00"})
    refused: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
    )

    _confirm_identity(page, url)
    expect(page.get_by_text("You will pay on Stripe's secure page")).to_be_visible()
    _choose(page, "60.00")

    expect(page.get_by_role("heading", name="Stripe test mode checkout")).to_be_visible()
    assert page.url.startswith(fake_stripe.base_url)
    page.get_by_role("button", name="Pay $60.00").click()

    expect(page.get_by_role("heading", name="Processing your payment")).to_be_visible()
    assert page.url.startswith(live_server.url)
    assert not Payment.objects.exists()
    assert [d.status for d in fake_stripe.deliver()] == [200, 200]  # Stripe's webhook, signed, arrives now
    expect(page.get_by_role("heading", name="Thank you, your payment was received")).to_be_visible(
        timeout=15_000
    )
    expect(page.get_by_role("row", name="Remaining balance $90.00")).to_be_visible()
    assert _scroll_width(page) <= 390

    payment = Payment.objects.get()
    assert (payment.amount, payment.processor) == (Decimal("60.00"), "stripe")
    assert (
        payment.processor_reference
        == fake_stripe.event_of("payment_intent.succeeded")["data"]["object"]["id"]
    )
    bill.refresh_from_db()
    assert bill.amount_due == Decimal("90.00")
    assert refused == []


def test_back_from_the_processor_never_posts_again_and_leaving_it_charges_nothing(
    page: Page, live_server: Any, fake_stripe: FakeStripe
) -> None:
    """Every POST of ours is answered with a redirect (issue 12), the amount form too: Back from the hosted page
    shows the payment page as it is now, with the amount due filled in again."""
    bill, url = _link_for(live_server, amount="150.00", buckets={"0_30": "40.00", "31_60": "110.00"})
    _confirm_identity(page, url)
    _choose(page, "50.00")
    expect(page.get_by_role("heading", name="Stripe test mode checkout")).to_be_visible()

    methods: list[str] = []
    page.on(
        "request", lambda request: methods.append(request.method) if request.is_navigation_request() else None
    )
    page.go_back()
    expect(page.get_by_role("heading", name="Hello Marisol")).to_be_visible()
    assert "POST" not in methods
    expect(page.get_by_label("Amount ($)")).to_have_value("150.00")

    _choose(page, "50.00")
    page.get_by_role("link", name="Back to the practice").click()
    expect(page.get_by_role("status")).to_have_text("You left the payment page. Nothing was charged.")
    bill.refresh_from_db()
    assert bill.amount_due == Decimal("150.00")
    assert not Payment.objects.exists()


@pytest.mark.browser_context_args(viewport=PHONE_VIEWPORT)
def test_a_locked_link_shows_no_form_and_the_number_to_call(page: Page, live_server: Any) -> None:
    _bill, url = _link_for(live_server, amount="150.00", buckets={"31_60": "150.00"})
    page.goto(url)
    for _ in range(5):
        page.get_by_label("Date of birth (MM/YYYY)").fill("05/1980")
        page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("alert")).to_have_text("Too many attempts. Try again in 15 minutes.")
    expect(page.get_by_label("Date of birth (MM/YYYY)")).to_have_count(0)
    expect(page.get_by_role("button", name="Continue")).to_have_count(0)
    call = page.get_by_role("link", name="(801) 555-0199")
    expect(call).to_have_attribute("href", "tel:+18015550199")
    assert _scroll_width(page) <= 390
