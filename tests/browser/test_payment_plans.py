"""Payment plans and pay-later (H5) in a real browser on a phone (390 px), by role and label, with axe on every
page: a patient signs up for monthly installments, and another for pay-later, on the embedded default (the
sandbox processor: its hosted card-save page and its signed confirmation over HTTP), and sees the schedule;
the front desk sees the plan on the guarantor page."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from payments.links import payment_link_create
from payments.models import InstallmentState, PaymentPlan, PlanKind, PlanState
from practices.models import Bill, BillState, Role
from practices.timezones import organization_today
from tests.browser.axe import describe, violations
from tests.browser.conftest import PASSWORD
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.payments.plan_rows import plan_make

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # pytest-playwright 0.10's base_url fixture under pytest 9 (harmless, ECOSYSTEM.md §8).
    pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning"),
]

PHONE_VIEWPORT = {"width": 390, "height": 844}


def _accessible(page: Page, name: str) -> None:
    found = violations(page)
    assert not found, f"{name}:\n{describe(found)}"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_VIEWPORT["width"], f"{name} scrolls sideways ({width} px)"


def _link_for(live_server: Any, amount: str = "150.00") -> tuple[Bill, str]:
    org = OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")
    guarantor = GuarantorFactory.create(organization=org, first_name="Marisol", last_name="Quintanilla",
                                        date_of_birth=date(1980, 4, 12))  # fmt: skip
    AccountFactory.create(guarantor=guarantor, total=Decimal(amount), patient_portion=Decimal(amount),
                          bucket_0_30=Decimal(amount), aging_category="0_30")  # fmt: skip
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
    page.get_by_label("Date of birth (MM/YYYY)").fill("04/1980")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Hello Marisol")).to_be_visible()


def _save_card_and_wait(page: Page, heading: str) -> None:
    expect(page.get_by_text("Sandbox processor: test mode.")).to_be_visible()
    expect(page.get_by_role("heading", name="Save a card for your payment plan")).to_be_visible()
    expect(page.get_by_label("Card number")).to_have_count(0)
    _accessible(page, "hosted card-save page")
    page.get_by_role("button", name="Save the test card").click()
    expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=15_000)
    _accessible(page, "plan set up")


@pytest.mark.browser_context_args(viewport=PHONE_VIEWPORT)
def test_a_patient_signs_up_for_monthly_installments_and_sees_the_schedule(
    page: Page, live_server: Any, settings: Any
) -> None:
    settings.PAYMENT_PROCESSOR = "sandbox"
    bill, url = _link_for(live_server)
    today = organization_today(bill.organization)

    _confirm_identity(page, url)
    _accessible(page, "payment page")
    page.get_by_role("link", name="Pay over time").click()
    expect(page.get_by_role("heading", name="Pay over time")).to_be_visible()
    _accessible(page, "plan choice")
    page.get_by_role("group", name="How many monthly payments?").get_by_label(
        "3 monthly payments of $50.00"
    ).check()
    page.get_by_role("button", name="Review").click()

    expect(page.get_by_role("heading", name="Review your payment plan")).to_be_visible()
    _accessible(page, "plan review")
    expect(page.get_by_role("row", name=f"1 {today:%b} {today.day}, {today.year} $50.00")).to_be_visible()
    expect(page.get_by_role("row", name="Total $150.00")).to_be_visible()
    assert not PaymentPlan.objects.exists()  # nothing before the confirmation
    page.get_by_role("button", name="Save a card and confirm").click()

    _save_card_and_wait(page, "Your payment plan is set up")
    expect(page.get_by_role("row").filter(has_text="$50.00")).to_have_count(3)
    plan = PaymentPlan.objects.get()
    assert (plan.kind, plan.state, plan.installment_count) == (PlanKind.MONTHLY, PlanState.ACTIVE, 3)
    bill.refresh_from_db()
    bill.guarantor.refresh_from_db()
    assert bill.guarantor.on_payment_plan and bill.state == BillState.CLOSED  # R2 and D11 at once


@pytest.mark.browser_context_args(viewport=PHONE_VIEWPORT)
def test_a_patient_chooses_to_pay_later_on_a_date(page: Page, live_server: Any, settings: Any) -> None:
    settings.PAYMENT_PROCESSOR = "sandbox"
    bill, url = _link_for(live_server, amount="420.00")
    when = organization_today(bill.organization) + timedelta(days=30)

    _confirm_identity(page, url)
    page.get_by_role("link", name="Pay later").click()
    expect(page.get_by_role("heading", name="Pay later")).to_be_visible()
    _accessible(page, "pay-later choice")
    page.get_by_label("Date to pay").fill((when + timedelta(days=60)).isoformat())
    page.get_by_role("button", name="Review").click()
    expect(page.get_by_role("alert")).to_contain_text("Choose a date after today and no later than")
    page.get_by_label("Date to pay").fill(when.isoformat())
    page.get_by_role("button", name="Review").click()

    expect(page.get_by_role("row", name=f"1 {when:%b} {when.day}, {when.year} $420.00")).to_be_visible()
    _accessible(page, "pay-later review")
    page.get_by_role("button", name="Save a card and confirm").click()

    _save_card_and_wait(page, "Your payment date is set")
    expect(
        page.get_by_role("row", name=f"1 {when:%b} {when.day}, {when.year} $420.00 Scheduled")
    ).to_be_visible()
    assert PaymentPlan.objects.get().kind == PlanKind.PAY_LATER


def test_the_front_desk_sees_the_plan_on_the_guarantor_page(
    page: Page, live_server: Any, log_in: Any
) -> None:
    org = OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")
    MembershipFactory.create(organization=org, role=Role.FRONT_DESK, user__username="frontdesk",
                             user__password=PASSWORD)  # fmt: skip
    guarantor = GuarantorFactory.create(organization=org, external_id="G1", first_name="Marisol",
                                        last_name="Quintanilla", on_payment_plan=True)  # fmt: skip
    AccountFactory.create(guarantor=guarantor)
    now = timezone.now()
    bill = Bill.objects.create(
        organization=org, guarantor=guarantor, bill_id="REQ-1", source="request", state="closed",
        amount_due=Decimal("300.00"), created_at=now, effective_created_date=now.date(), last_seen_at=now,
    )  # fmt: skip
    plan_make(bill, installments=[
        (date(2026, 11, 20), "150.00", InstallmentState.PAID),
        (date(2026, 12, 20), "150.00", InstallmentState.RETRYING),
    ])  # fmt: skip

    log_in("frontdesk", "/dashboard/payments/smile-dental/guarantors/G1/")

    section = page.get_by_role("region", name="Payment plan")
    expect(section.get_by_role("heading", name="Monthly installments: $300.00 Active")).to_be_visible()
    expect(
        section.get_by_role("row", name="2 Dec 20, 2026 $150.00 Declined: to be tried again 1 —")
    ).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="taken here on the payment page")).to_be_visible()
    found = violations(page)
    assert not found, describe(found)
