"""The after-final worklist in a real browser (SPEC §13.1): one test per outcome, finding everything by role
and label, and asserting what the page shows afterwards (and what became of the bill).

Each bill is walked through the real engine on a two-day schedule (statement on day 0, final notice on
day 1), and the outbox sends what is due (no provider credentials: the embedded default marks it sent)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from dunning.engine import run_dunning
from dunning.models import DunningSettings, Preset, PresetStep
from notifications.outbox import messages_send_due
from payments.models import Snooze
from practices.models import Bill, BillState, ClosedReason, Organization, Role
from practices.timezones import organization_today
from tests.browser.conftest import PASSWORD
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.payments.factories import BillFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # pytest-playwright 0.10's base_url fixture under pytest 9 (harmless, ECOSYSTEM.md §8).
    pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning"),
]

WORKLIST = "/dashboard/after-final/"


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 18, 0, tzinfo=UTC)  # noon in Denver


def _day(value: date) -> str:
    return f"{value:%b} {value.day}, {value:%Y}"


@pytest.fixture
def org() -> Organization:
    org = OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")
    preset = Preset.objects.create(slug="two-day", name="Two day", cycle_days=30, paper_cycle_days=30)
    for age, kind, channel in [(0, "statement", "email"), (0, "statement", "sms"), (1, "final", "email"),
                               (1, "final", "sms")]:  # fmt: skip
        PresetStep.objects.create(preset=preset, bill_age_days=age, kind=kind, channel=channel)
    DunningSettings.objects.create(organization=org, preset=preset)
    MembershipFactory.create(
        organization=org, role=Role.FRONT_DESK, user__username="frontdesk", user__password=PASSWORD
    )
    MembershipFactory.create(
        organization=org, role=Role.BILLING_MANAGER, user__username="manager", user__password=PASSWORD
    )
    return org


def completed(org: Organization, external_id: str, first: str, last: str) -> Bill:
    """A bill that had its statement yesterday and its final notice today, through the engine and outbox."""
    patient = GuarantorFactory.create(
        organization=org, external_id=external_id, first_name=first, last_name=last, mobile_phone="+18015550100",
        home_phone="+18015550111", work_phone="+18015550122", email=f"{external_id.lower()}@example.com",
        address_line1="1 Main St", address_city="Salt Lake City", address_state="UT", address_zip="84101",
        address_status="valid", timezone="America/Denver",
    )  # fmt: skip
    AccountFactory.create(guarantor=patient, bucket_over_90=Decimal("100.00"), bucket_0_30=Decimal("0.00"),
                   total=Decimal("100.00"), patient_portion=Decimal("100.00"), aging_category="over_90")  # fmt: skip
    today = organization_today(org)
    bill = BillFactory.create(organization=org, guarantor=patient, bill_id=f"S-{external_id}",
                       effective_created_date=today - timedelta(days=1))  # fmt: skip
    for day in (today - timedelta(days=1), today):
        run_dunning(organization=org, on=day, now=noon(day))
        messages_send_due(organization=org, now=noon(day))
    bill.refresh_from_db()
    assert bill.state == BillState.COMPLETED
    return bill


def test_promise_to_pay_moves_the_bill_to_promised_until_the_day_after(page: Page, log_in, org) -> None:
    bill = completed(org, "G0001", "Marisol", "Quintanilla")
    promised = organization_today(org) + timedelta(days=7)

    log_in("frontdesk")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="After final").click()
    expect(page.get_by_role("heading", name="After-final worklist")).to_be_visible()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Marisol Quintanilla"))
    # Home and work phones: a call list, as a person dials them (issue 12).
    expect(row.get_by_role("link", name="(801) 555-0111")).to_have_attribute("href", "tel:+18015550111")
    expect(row.get_by_role("link", name="(801) 555-0122")).to_have_attribute("href", "tel:+18015550122")
    expect(row).to_contain_text("Email: Sent")

    page.get_by_label("Promise date for Marisol Quintanilla").fill(promised.isoformat())
    page.get_by_role("button", name="Promise to pay for Marisol Quintanilla").click()

    expect(page.get_by_role("status")).to_contain_text(
        f"Marisol Quintanilla promised to pay $100.00 by {_day(promised)}: snoozed until then. Bill S-G0001 "
        f"comes back on this list on {_day(promised + timedelta(days=1))} if it is still owed."
    )
    expect(page.get_by_text("Nobody to call")).to_be_visible()
    page.get_by_role("link", name=re.compile(r"^Promised")).click()
    promised_row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Marisol Quintanilla"))
    expect(promised_row).to_contain_text(promised.strftime("%b %-d, %Y"))
    snooze = Snooze.objects.get(guarantor=bill.guarantor)
    assert snooze.created_by is not None
    assert (snooze.until, snooze.created_by.username) == (promised + timedelta(days=1), "frontdesk")


def test_payment_plan_keeps_the_bill_on_the_list_with_its_outcome(page: Page, log_in, org) -> None:
    bill = completed(org, "G0002", "Tom", "Okafor")

    log_in("frontdesk", WORKLIST)
    page.get_by_role("button", name="Payment plan for Tom Okafor").click()

    expect(page.get_by_role("status")).to_contain_text(
        "Payment plan recorded for Tom Okafor (bill S-G0002, $100.00). Set it up in the practice software"
    )
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Tom Okafor"))
    expect(row).to_contain_text("Payment plan (set up in the PMS)")
    assert Bill.objects.get(pk=bill.pk).state == BillState.COMPLETED


def test_restart_reminders_takes_the_bill_off_the_list_and_reopens_it(page: Page, log_in, org) -> None:
    bill = completed(org, "G0003", "Lee", "Park")

    log_in("frontdesk", WORKLIST)
    page.get_by_label("Note for Lee Park").fill("Moved; new address in the PMS")
    page.get_by_role("button", name="Restart reminders for Lee Park").click()

    expect(page.get_by_role("status")).to_contain_text(
        "Reminders restarted for Lee Park: bill S-G0003 ($100.00) starts its schedule again from the first step"
    )
    expect(page.get_by_role("row").filter(has_text="Lee Park")).to_have_count(0)
    bill.refresh_from_db()
    assert (bill.state, bill.generation, bill.effective_created_date) == (
        BillState.ACTIVE,
        2,
        organization_today(org),
    )


def test_send_to_collections_asks_first_then_closes_and_exports(page: Page, log_in, org) -> None:
    bill = completed(org, "G0004", "Rosa", "Lima")

    log_in("frontdesk", WORKLIST)
    page.get_by_role("button", name="Send to collections for Rosa Lima").click()
    expect(page.get_by_role("heading", name="Send to collections?")).to_be_visible()
    assert Bill.objects.get(pk=bill.pk).state == BillState.COMPLETED  # nothing until confirmed
    page.get_by_role("button", name="Yes, send to collections").click()

    expect(page.get_by_role("status")).to_contain_text(
        "Bill S-G0004 of Rosa Lima ($100.00) was sent to collections and closed."
    )
    expect(page.get_by_role("row").filter(has_text="Rosa Lima")).to_have_count(0)
    bill.refresh_from_db()
    assert (bill.state, bill.closed_reason) == (BillState.CLOSED, ClosedReason.COLLECTIONS)

    with page.expect_download() as download:
        page.get_by_role("button", name="Collections export (CSV)").click()
    assert download.value.suggested_filename == f"collections-smile-dental-{organization_today(org)}.csv"
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8"))))
    assert [(r["guarantor_id"], r["last_name"], r["home_phone"], r["amount_due"]) for r in rows] == [
        ("G0004", "Lima", "8015550111", "100.00")
    ]


def test_write_off_is_for_billing_managers_and_asks_first(page: Page, log_in, org) -> None:
    bill = completed(org, "G0005", "Ana", "Diaz")

    log_in("frontdesk", WORKLIST)
    expect(page.get_by_role("button", name="Write off for Ana Diaz")).to_be_disabled()
    expect(page.get_by_text("Writing off a balance is for billing managers.")).to_be_visible()
    page.get_by_role("button", name="Log out").click()

    log_in("manager", WORKLIST)
    page.get_by_role("button", name="Write off for Ana Diaz").click()
    expect(page.get_by_role("heading", name="Write off this balance?")).to_be_visible()
    page.get_by_role("button", name="Yes, write it off").click()

    expect(page.get_by_role("status")).to_contain_text(
        "Bill S-G0005 of Ana Diaz ($100.00) was written off and closed."
    )
    expect(page.get_by_text("Nobody to call")).to_be_visible()
    bill.refresh_from_db()
    assert (bill.state, bill.closed_reason) == (BillState.CLOSED, ClosedReason.WRITTEN_OFF)
