"""Accessibility (issue 12): no serious or critical axe-core violations on the dashboard, the admin and the
patient pages, as the people who use them see them (logged in by role, with data on the page)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from notifications.models import Channel, Kind, Message, Reason, State
from payments.links import payment_link_create
from practices.models import Bill, Organization, Role
from tests.browser.axe import describe, violations
from tests.browser.conftest import PASSWORD
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory, OrganizationFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # pytest-playwright 0.10's base_url fixture under pytest 9 (harmless, ECOSYSTEM.md §8).
    pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning"),
]


@pytest.fixture
def org() -> Organization:
    org = OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver",
                                     phone="+18015550199")  # fmt: skip
    MembershipFactory.create(organization=org, role=Role.FRONT_DESK, user__username="frontdesk",
                             user__password=PASSWORD)  # fmt: skip
    MembershipFactory.create(organization=org, role=Role.BILLING_MANAGER, user__username="manager",
                             user__password=PASSWORD)  # fmt: skip
    for n, (first, last) in enumerate([("Marisol", "Quintanilla"), ("Tom", "Okafor"), ("Walter", "Nobody")]):
        guarantor = GuarantorFactory.create(
            organization=org, external_id=f"G{n}", first_name=first, last_name=last,
            mobile_phone="+18015550100" if n < 2 else "", email=f"g{n}@example.com" if n < 2 else "",
            last_visit_date=date(2026, 1, 15), date_of_birth=date(1980, 4, 12),
        )  # fmt: skip
        AccountFactory.create(guarantor=guarantor, bucket_0_30=Decimal("85.00"), total=Decimal("85.00"),
                              patient_portion=Decimal("85.00"))  # fmt: skip
        if n == 2:
            Message.objects.create(organization=org, patient=guarantor, channel=Channel.SMS, kind=Kind.REQUEST,
                                   state=State.UNDELIVERED, reason=Reason.NO_DESTINATION, body="x")  # fmt: skip
    return org


def assert_accessible(page: Page, where: str) -> None:
    found = violations(page)
    assert not found, f"{where}:\n{describe(found)}"


def test_the_front_desks_pages_have_no_serious_or_critical_violations(
    page: Page, live_server, log_in, org
) -> None:
    log_in("frontdesk")
    expect(page.get_by_role("heading", name="Payments", exact=True)).to_be_visible()
    assert_accessible(page, "Payments home")
    for name in ("Bulk payment request", "Undeliverable"):
        page.goto(f"{live_server.url}/dashboard/payments/{org.slug}/")
        page.get_by_role("link", name=name).first.click()
        page.wait_for_load_state("networkidle")
        assert_accessible(page, name)
    page.goto(f"{live_server.url}/dashboard/payments/{org.slug}/")
    page.get_by_role("link", name="Bulk payment request", exact=True).click()
    page.get_by_role("button", name="Snooze Tom Okafor").click()
    expect(page.get_by_role("dialog", name="Snooze Tom Okafor")).to_be_visible()
    assert_accessible(page, "Snooze dialog")


def test_the_admin_has_no_serious_or_critical_violations(page: Page, live_server, log_in, org) -> None:
    page.goto(f"{live_server.url}/admin/login/")
    assert_accessible(page, "Admin login")
    log_in("manager", "/admin/")
    assert_accessible(page, "Admin index")
    for path in (
        reverse("admin:dunning_dunningsettings_changelist"),
        reverse("admin:payments_paymentsettings_changelist"),
        reverse("admin:notifications_message_changelist"),
    ):
        page.goto(f"{live_server.url}{path}")
        assert_accessible(page, path)
        rows = page.locator("#result_list tbody th a")
        if rows.count():
            rows.first.click()
            page.wait_for_load_state("networkidle")
            assert_accessible(page, f"{path} (change form)")


def test_an_ops_superuser_sees_an_accessible_admin(page: Page, live_server, log_in, org) -> None:
    get_user_model().objects.create_superuser("ops", "ops@example.com", PASSWORD)
    log_in("ops", "/admin/")
    assert_accessible(page, "Admin index (ops)")


def test_the_patient_pages_have_no_serious_or_critical_violations(page: Page, live_server, org) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    guarantor = org.patients.get(external_id="G0")
    now = timezone.now()
    bill = Bill.objects.create(organization=org, guarantor=guarantor, bill_id="REQ-1", source="request",
                               state="active", amount_due=Decimal("85.00"), created_at=now,
                               effective_created_date=now.date(), last_seen_at=now)  # fmt: skip
    _link, url = payment_link_create(bill=bill)
    page.goto(f"{live_server.url}/{url.split('://', 1)[1].split('/', 1)[1]}")
    expect(page.get_by_role("heading", name="Confirm your identity")).to_be_visible()
    assert_accessible(page, "Identity check")
    page.get_by_label("Date of birth (MM/YYYY)").fill("05/1980")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert_accessible(page, "Identity check with an error")
    page.get_by_label("Date of birth (MM/YYYY)").fill("04/1980")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Hello Marisol")).to_be_visible()
    assert_accessible(page, "Payment page")
