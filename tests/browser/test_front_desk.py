"""The front desk's morning in a real browser: log in, Select all (across pages), deselect one, snooze one
through its row's dialog with a reason, Send (B1-B3); then the undeliverable list: quick-add a number with
consent and resend (U1). tests/browser/test_morning.py walks the rest of issue 12's morning."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from notifications.models import OPEN_STATES, Channel, Kind, Message, State
from payments.campaigns import bulk_send
from payments.models import PaymentRequest, PaymentSettings, RequestMode, Snooze
from practices.models import Bill, BillSource, Organization, Role
from practices.timezones import organization_today
from tests.browser.conftest import PASSWORD
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory, OrganizationFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # pytest-playwright 0.10's base_url fixture under pytest 9 (harmless, ECOSYSTEM.md §8).
    pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning"),
]


def make_guarantor(org: Organization, external_id: str, first: str, last: str, **fields: object):
    fields.setdefault("mobile_phone", "+18015550100")
    fields.setdefault("email", f"{external_id.lower()}@example.com")
    fields.setdefault("last_visit_date", date(2026, 1, 15))
    patient = GuarantorFactory.create(
        organization=org, external_id=external_id, first_name=first, last_name=last, **fields
    )
    AccountFactory.create(guarantor=patient, bucket_0_30=Decimal("85.00"), total=Decimal("85.00"),
                   patient_portion=Decimal("85.00"))  # fmt: skip
    return patient


@pytest.fixture
def org() -> Organization:
    org = OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")
    MembershipFactory.create(
        organization=org, role=Role.FRONT_DESK, user__username="frontdesk", user__password=PASSWORD
    )
    return org


def test_select_all_deselect_one_snooze_one_and_send(page: Page, log_in, org: Organization) -> None:
    make_guarantor(org, "G0001", "Marisol", "Quintanilla")
    make_guarantor(org, "G0002", "Tom", "Okafor")
    for n in range(3, 56):  # 55 guarantors: two pages of 50
        make_guarantor(org, f"G{n:04d}", "Pat", f"Number{n:04d}")
    until = organization_today(org) + timedelta(days=14)

    log_in("frontdesk")

    expect(page.get_by_role("heading", name="Payments", exact=True)).to_be_visible()
    page.get_by_role("link", name="Bulk payment request", exact=True).click()
    expect(page.get_by_role("heading", name="Bulk payment request")).to_be_visible()
    page.get_by_role("checkbox", name="Select all", exact=True).check()
    expect(page.get_by_role("status").filter(has_text="selected")).to_have_text(
        re.compile("All 55 eligible guarantors selected, on every page.")
    )
    page.get_by_role("checkbox", name="Select Marisol Quintanilla").uncheck()
    expect(page.locator("#selection-count")).to_contain_text("54 guarantors selected")

    # Page 2 (htmx swaps the table only): its rows are selected too, and the deselection survives paging.
    page.get_by_role("link", name="Next →").click()
    expect(page.get_by_role("checkbox", name="Select Pat Number0055")).to_be_checked()
    page.get_by_role("link", name="← Previous").click()
    expect(page.get_by_role("checkbox", name="Select Marisol Quintanilla")).not_to_be_checked()
    expect(page.get_by_role("checkbox", name="Select Tom Okafor")).to_be_checked()

    # Snooze one row through its clock dialog with a reason from the organization's list; the selection made
    # for Send is kept.
    page.get_by_role("button", name="Snooze Tom Okafor").click()
    dialog = page.get_by_role("dialog", name="Snooze Tom Okafor")
    dialog.get_by_label("Re-enrol date").fill(until.isoformat())
    dialog.get_by_label("Reason", exact=True).select_option("Insurance still processing")
    dialog.get_by_role("button", name="Snooze", exact=True).click()
    expect(page.get_by_text("Snoozed Tom Okafor until")).to_be_visible()
    expect(page.get_by_role("checkbox", name="Select Tom Okafor")).to_have_count(0)
    expect(page.get_by_role("checkbox", name="Select all", exact=True)).to_be_checked()
    expect(page.get_by_role("checkbox", name="Select Marisol Quintanilla")).not_to_be_checked()

    page.get_by_role("button", name="Send", exact=True).click()
    expect(
        page.get_by_text(re.compile(r"Payment requests started for 53 guarantors\. Going out now: "))
    ).to_be_visible()
    expect(
        page.get_by_role("checkbox", name="Select Marisol Quintanilla")
    ).to_be_visible()  # still on the list

    bills = Bill.objects.filter(organization=org, source=BillSource.REQUEST)
    requested = set(bills.values_list("guarantor__external_id", flat=True))
    assert requested == {f"G{n:04d}" for n in range(3, 56)}
    assert (
        PaymentRequest.objects.filter(mode=RequestMode.BULK, requested_by__username="frontdesk").count() == 53
    )
    messages = Message.objects.filter(bill__in=bills, kind=Kind.REQUEST)
    assert messages.count() == 53 * 2
    assert set(messages.values_list("state", flat=True)) <= set(OPEN_STATES)  # held or not by quiet hours
    assert not Message.objects.filter(patient__external_id__in=["G0001", "G0002"]).exists()
    snooze = Snooze.objects.get()
    assert (snooze.guarantor.external_id, snooze.until, snooze.reason) == (
        "G0002",
        until,
        "Insurance still processing",
    )
    assert snooze.created_by is not None and snooze.created_by.username == "frontdesk"


def test_quick_add_a_number_with_consent_and_resend(page: Page, log_in, org: Organization) -> None:
    PaymentSettings.objects.create(organization=org, request_channels=["sms"])
    make_guarantor(org, "G0007", "Tom", "Okafor", mobile_phone="")
    bulk_send(organization=org, at=timezone.now())
    original = Message.objects.get()
    assert (original.state, original.channel) == (State.UNDELIVERED, Channel.SMS)

    log_in("frontdesk")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Undeliverable").click()
    page.get_by_role("link", name="Open message to Tom Okafor").click()
    page.get_by_role("textbox", name="Mobile number").fill("(801) 555-0123")
    page.get_by_label("The patient consented to receive texts at this number").check()
    page.get_by_role("button", name="Send", exact=True).click()

    expect(page.get_by_text(re.compile(r"Resent to Tom Okafor \(\(•••\) •••-0123\)"))).to_be_visible()
    resend = Message.objects.get(resend_of=original)
    assert (resend.kind, resend.channel, resend.destination) == (Kind.RESEND, Channel.SMS, "+18015550123")
    assert resend.state in OPEN_STATES
    assert resend.consent_by is not None and resend.consent_by.username == "frontdesk"
    assert resend.consent_at is not None
    original.patient.refresh_from_db()
    assert original.patient.mobile_phone == ""  # used for this campaign only
