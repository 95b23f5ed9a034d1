"""A patient in a real browser: open the payment link, fail the MM/YYYY check once, pass it, pay with the
sandbox card, see the receipt (P1-P3)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from payments.links import payment_link_create
from payments.models import Payment, PaymentStatus
from practices.models import Bill, BillState
from tests.factories import AccountFactory, GuarantorFactory, OrganizationFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # pytest-playwright 0.10's base_url fixture under pytest 9 (harmless, ECOSYSTEM.md §8).
    pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning"),
]


# The payment page sends ``Referrer-Policy: no-referrer`` (header in payments/views.py and <meta> in
# templates/payments/pay_base.html). With it Chromium sends ``Origin: null`` on the page's own form POSTs and
# Django's CSRF origin check answers 403, so no real patient can verify or pay. ``same-origin`` keeps the token
# away from other sites (T4) and fixes it (verified by rewriting both in a route); then delete this marker.
def test_verify_then_pay_with_the_sandbox_card_and_see_the_receipt(page: Page, live_server) -> None:
    org = OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")
    guarantor = GuarantorFactory.create(organization=org, first_name="Marisol", last_name="Quintanilla",
                                 date_of_birth=date(1980, 4, 12))  # fmt: skip
    AccountFactory.create(guarantor=guarantor, bucket_31_60=Decimal("150.00"), bucket_0_30=Decimal("0.00"),
                   total=Decimal("150.00"), patient_portion=Decimal("150.00"), aging_category="31_60")  # fmt: skip
    now = timezone.now()
    bill = Bill.objects.create(
        organization=org, guarantor=guarantor, bill_id="REQ-1", source="request", state="active",
        amount_due=Decimal("150.00"), created_at=now, effective_created_date=now.date(), last_seen_at=now,
    )  # fmt: skip
    _link, url = payment_link_create(bill=bill)
    path = url.split("://", 1)[1].split("/", 1)[1]

    page.goto(f"{live_server.url}/{path}")
    expect(page.get_by_role("heading", name="Confirm your identity")).to_be_visible()
    expect(page.get_by_text("Marisol")).to_have_count(0)  # nothing about the patient before the check (P2)
    page.get_by_label("Date of birth (MM/YYYY)").fill("05/1980")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_have_text("We could not verify those details.")

    page.get_by_label("Date of birth (MM/YYYY)").fill("04/1980")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Hello Marisol")).to_be_visible()
    expect(page.get_by_text("$150.00").first).to_be_visible()

    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry (MM/YY)").fill("12/30")
    page.get_by_label("Security code (CVC)").fill("123")
    page.get_by_role("button", name="Pay now").click()

    expect(page.get_by_role("heading", name="Thank you, your payment was received")).to_be_visible()
    expect(page.get_by_text("Your balance is paid in full.")).to_be_visible()
    payment = Payment.objects.get()
    assert (payment.amount, payment.status, payment.card_last4) == (
        Decimal("150.00"),
        PaymentStatus.SUCCEEDED,
        "4242",
    )
    bill.refresh_from_db()
    assert bill.state != BillState.ACTIVE
    expect(page.get_by_text(payment.gateway_reference)).to_be_visible()


# Issue 12: the patient path on a phone, Back after a payment, the locked page.

PHONE_VIEWPORT = {"width": 390, "height": 844}


def _scroll_width(page: Page) -> int:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert isinstance(width, int)
    return width


def _link_for(
    live_server, *, amount: str, buckets: dict[str, str], phone: str = "+18015550199"
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


def _pay(page: Page, amount: str, card: str = "4242 4242 4242 4242") -> None:
    page.get_by_label("Amount ($)").fill(amount)
    page.get_by_label("Card number").fill(card)
    page.get_by_label("Expiry (MM/YY)").fill("12/30")
    page.get_by_label("Security code (CVC)").fill("123")
    page.get_by_role("button", name="Pay now").click()


@pytest.mark.browser_context_args(viewport=PHONE_VIEWPORT)
def test_no_page_of_the_patient_path_is_wider_than_a_390px_phone(page: Page, live_server) -> None:
    """The receipt was 400 px wide on a 390 px phone and its amounts were cut off at the edge (issue 12)."""
    _bill, url = _link_for(live_server, amount="11150.00", buckets={"0_30": "10000.00", "31_60": "1150.00"})
    widths: dict[str, int] = {}

    page.goto(url)
    widths["verify"] = _scroll_width(page)
    page.get_by_label("Date of birth (MM/YYYY)").fill("05/1980")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_have_text("We could not verify those details.")
    widths["verify, mismatch"] = _scroll_width(page)
    page.get_by_label("Date of birth (MM/YYYY)").fill("04/1980")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Hello Marisol")).to_be_visible()
    widths["pay"] = _scroll_width(page)
    _pay(page, "10000.00", card="4000 0000 0000 0002")
    expect(page.get_by_role("alert")).to_contain_text("declined")
    widths["pay, declined"] = _scroll_width(page)
    _pay(page, "10000.00")
    expect(page.get_by_role("heading", name="Thank you, your payment was received")).to_be_visible()
    widths["receipt"] = _scroll_width(page)
    amount = page.get_by_role("cell", name="$10,000.00")
    box = amount.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE_VIEWPORT["width"]  # not cut off at the edge
    page.goto(url)
    _pay(page, "1150.00")
    expect(page.get_by_text("Your balance is paid in full.")).to_be_visible()
    widths["receipt, paid in full"] = _scroll_width(page)
    page.goto(url)
    expect(page.get_by_role("heading", name="This payment link is not available")).to_be_visible()
    widths["link unavailable"] = _scroll_width(page)

    assert {name: width for name, width in widths.items() if width > 390} == {}


def test_back_after_a_payment_never_posts_again_and_shows_what_is_owed_now(page: Page, live_server) -> None:
    """Back from the receipt, after a wrong date of birth and a declined card, asked to resubmit a form
    (Chromium: net::ERR_CACHE_MISS). Every POST is answered with a redirect (issue 12)."""
    bill, url = _link_for(live_server, amount="150.00", buckets={"0_30": "40.00", "31_60": "110.00"})
    page.goto(url)
    page.get_by_label("Date of birth (MM/YYYY)").fill("05/1980")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Date of birth (MM/YYYY)").fill("04/1980")
    page.get_by_role("button", name="Continue").click()
    _pay(page, "50.00", card="4000 0000 0000 0002")
    expect(page.get_by_role("alert")).to_contain_text("declined")
    _pay(page, "50.00")
    expect(page.get_by_role("heading", name="Thank you, your payment was received")).to_be_visible()

    methods = []
    page.on(
        "request", lambda request: methods.append(request.method) if request.is_navigation_request() else None
    )
    for _ in range(4):  # back through the declined payment and the failed check, to the first page
        response = page.go_back()
        assert response is None or response.ok
    assert "POST" not in methods

    page.go_forward()
    page.go_forward()  # the payment page, as it is now
    expect(page.get_by_role("heading", name="Hello Marisol")).to_be_visible()
    expect(page.get_by_text("$100.00").first).to_be_visible()  # the amount due after the payment
    expect(page.get_by_role("row", name="31–60 days $60.00")).to_be_visible()  # balance by age, oldest first
    expect(page.get_by_label("Card number")).to_have_value("")  # not restored by the browser
    expect(page.get_by_label("Amount ($)")).to_have_value("100.00")
    bill.refresh_from_db()
    assert bill.amount_due == Decimal("100.00")
    assert Payment.objects.filter(status=PaymentStatus.SUCCEEDED).count() == 1


@pytest.mark.browser_context_args(viewport=PHONE_VIEWPORT)
def test_a_locked_link_shows_no_form_and_the_number_to_call(page: Page, live_server) -> None:
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
