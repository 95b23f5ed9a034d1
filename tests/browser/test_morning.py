"""Issue 12, the front desk's morning in a real browser, by role and label: log in and land on the Payments home
page (admin roles land on the admin, whose "View site" leads there), open each figure's list, read the bulk
payment request settings, snooze a row through its clock dialog and undo it, snooze many after a confirmation
that states the count, lift several at once, Send with quiet hours holding some messages, then work the
undeliverable list to the last resend."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import Page, expect

from notifications.models import Channel, Message, State
from payments.models import PaymentSettings, Snooze
from practices.models import AuditEvent, Organization, Role
from practices.timezones import organization_today
from tests.browser.conftest import PASSWORD
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.payments.factories import BillFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # pytest-playwright 0.10's base_url fixture under pytest 9 (harmless, ECOSYSTEM.md §8).
    pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning"),
]

DENVER = ZoneInfo("America/Denver")


@pytest.fixture(autouse=True)
def morning() -> Iterator[None]:
    """10:00 today in Denver (the clock runs on): outside quiet hours at the practice, 6:00 or 7:00 in
    Honolulu, whose patients' messages wait for 8:00 there."""
    today = timezone.now().astimezone(DENVER).date()
    with time_machine.travel(datetime.combine(today, time(10, 0), tzinfo=DENVER), tick=True):
        yield


@pytest.fixture
def org() -> Organization:
    org = OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")
    MembershipFactory.create(
        organization=org, role=Role.FRONT_DESK, user__username="frontdesk", user__password=PASSWORD
    )
    return org


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


def log_in(page: Page, live_server, username: str) -> None:
    """The way a person logs in: the login page with nothing after it."""
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def tile(page: Page, label: str):
    return page.get_by_role("list", name="Today").get_by_role("link", name=re.compile(f"^{re.escape(label)}"))


def figure(page: Page, label: str):
    return tile(page, label).locator(".tile-value")


def test_the_front_desk_lands_on_the_payments_home_page_and_each_figure_opens_its_list(
    page: Page, live_server, org: Organization
) -> None:
    for n in range(3):
        make_guarantor(org, f"G{n}", "Pat", f"Number{n}")
    snoozed = make_guarantor(org, "S1", "Sam", "Snoozed")
    Snooze.objects.create(organization=org, guarantor=snoozed, until=organization_today(org) + timedelta(days=9),
                          reason="Insurance still processing")  # fmt: skip
    BillFactory.create(guarantor=make_guarantor(org, "F1", "Fay", "Final"), state="completed")

    log_in(page, live_server, "frontdesk")

    expect(page).to_have_url(f"{live_server.url}/dashboard/payments/smile-dental/")
    expect(page.get_by_role("heading", name="Payments", exact=True)).to_be_visible()
    expect(figure(page, "Eligible today")).to_have_text("3")
    expect(tile(page, "Eligible today")).to_contain_text("$255.00 in patient portions.")
    expect(figure(page, "Snoozed")).to_have_text("1")
    expect(figure(page, "After final")).to_have_text("1")
    expect(tile(page, "After final")).to_contain_text("$100.00 still owed")

    tile(page, "Eligible today").click()
    expect(page.get_by_role("heading", name="Bulk payment request")).to_be_visible()
    expect(page.get_by_role("checkbox", name="Select Pat Number2")).to_be_visible()
    page.get_by_role("link", name="← Payments").click()
    tile(page, "Snoozed").click()
    expect(page.get_by_role("button", name="Lift snooze for Sam Snoozed")).to_be_visible()
    page.go_back()
    tile(page, "Undeliverable").click()
    expect(page.get_by_role("heading", name="Undeliverable messages")).to_be_visible()
    page.go_back()
    tile(page, "After final").click()
    expect(page.get_by_text("Fay Final").first).to_be_visible()
    page.go_back()
    tile(page, "Held for later").click()
    expect(page.get_by_text("Nothing waiting: every request has gone out.")).to_be_visible()


def test_a_billing_manager_lands_on_the_admin_and_view_site_leads_to_the_payments_home_page(
    page: Page, live_server, org: Organization
) -> None:
    MembershipFactory.create(
        organization=org, role=Role.BILLING_MANAGER, user__username="manager", user__password=PASSWORD
    )

    log_in(page, live_server, "manager")

    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    page.get_by_role("link", name="View site").click()
    expect(page).to_have_url(f"{live_server.url}/dashboard/payments/smile-dental/")
    expect(page.get_by_role("heading", name="Payments", exact=True)).to_be_visible()
    page.get_by_role("link", name="Admin", exact=True).first.click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()


def test_the_bulk_list_opens_its_read_only_settings(page: Page, live_server, org: Organization) -> None:
    PaymentSettings.objects.create(organization=org, min_payment_amount=Decimal("25.00"),
                                   eligible_aging=["31_60", "61_90", "over_90"])  # fmt: skip
    log_in(page, live_server, "frontdesk")
    page.get_by_role("link", name="Bulk payment request", exact=True).click()

    page.get_by_role("link", name="Bulk payment request settings").click()

    expect(page.get_by_role("heading", name="Bulk payment request settings")).to_be_visible()
    who = page.get_by_role("region", name="Who is on the list")
    expect(who).to_contain_text("$25.00")
    expect(who).to_contain_text("0-30 days: left off")
    expect(who).to_contain_text("Over 90 days: on the list")
    how = page.get_by_role("region", name="How the requests go out")
    expect(how).to_contain_text("9:00 PM to 8:00 AM in each patient's own time zone")
    expect(page.locator("main").get_by_role("textbox")).to_have_count(0)  # read-only
    page.get_by_role("link", name="← Bulk payment request").click()
    expect(page.get_by_role("heading", name="Bulk payment request", exact=True)).to_be_visible()


def test_a_rows_clock_button_opens_a_dialog_of_its_own_and_the_banner_undoes_the_snooze(
    page: Page, live_server, org: Organization
) -> None:
    make_guarantor(org, "G1", "Marisol", "Quintanilla")
    make_guarantor(org, "G2", "Tom", "Okafor")
    today = organization_today(org)
    log_in(page, live_server, "frontdesk")
    page.get_by_role("link", name="Bulk payment request", exact=True).click()
    page.get_by_role("checkbox", name="Select Marisol Quintanilla").check()
    # The bar's fields hold something else: the dialog must not read them.
    page.get_by_label("Until").fill((today + timedelta(days=30)).isoformat())

    page.get_by_role("button", name="Snooze Tom Okafor").click()

    dialog = page.get_by_role("dialog", name="Snooze Tom Okafor")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Re-enrol date")).to_be_focused()
    dialog.get_by_label("Re-enrol date").fill((today + timedelta(days=7)).isoformat())
    dialog.get_by_label("Reason", exact=True).select_option("Patient called: paying soon")
    dialog.get_by_role("button", name="Snooze", exact=True).click()

    until = today + timedelta(days=7)
    banner = page.get_by_role("status").filter(has_text="Snoozed Tom Okafor")
    expect(banner).to_have_text(
        re.compile(
            rf"Snoozed Tom Okafor until {until:%b} {until.day}, {until:%Y} \(Patient called: paying soon\)"
        )
    )
    expect(page.get_by_role("checkbox", name="Select Tom Okafor")).to_have_count(0)
    expect(page.get_by_role("checkbox", name="Select Marisol Quintanilla")).to_be_checked()  # selection kept
    snooze = Snooze.objects.get()
    assert (snooze.guarantor.external_id, snooze.until) == ("G2", until)

    banner.get_by_role("button", name="Undo the snooze").click()

    expect(page.get_by_text("Snooze undone: Tom Okafor is back on the list if eligible.")).to_be_visible()
    expect(page.get_by_role("checkbox", name="Select Tom Okafor")).to_be_visible()
    snooze.refresh_from_db()
    assert snooze.lifted_at is not None
    assert AuditEvent.objects.filter(action="snooze.undo", actor__username="frontdesk").count() == 1


def test_cancel_closes_the_dialog_without_snoozing(page: Page, live_server, org: Organization) -> None:
    make_guarantor(org, "G1", "Tom", "Okafor")
    log_in(page, live_server, "frontdesk")
    page.get_by_role("link", name="Bulk payment request", exact=True).click()
    page.get_by_role("button", name="Snooze Tom Okafor").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert not Snooze.objects.exists()


def test_a_bulk_snooze_states_its_count_and_asks_then_the_snoozed_tab_lifts_several(
    page: Page, live_server, org: Organization
) -> None:
    """Issue 12: select all, deselect, Snooze snoozed 45 people without saying how many or asking."""
    for n in range(8):
        make_guarantor(org, f"G{n}", "Pat", f"Number{n}")
    today = organization_today(org)
    log_in(page, live_server, "frontdesk")
    page.get_by_role("link", name="Bulk payment request", exact=True).click()

    page.get_by_role("checkbox", name="Select all", exact=True).check()
    page.get_by_role("checkbox", name="Select Pat Number3").uncheck()
    bar = page.get_by_role("group", name="Snooze the selected guarantors")
    expect(bar.get_by_role("button", name="Snooze 7 selected")).to_be_visible()
    bar.get_by_label("Until").fill((today + timedelta(days=14)).isoformat())
    bar.get_by_label("Reason", exact=True).select_option("Insurance still processing")
    bar.get_by_role("button", name="Snooze 7 selected").click()

    expect(page.get_by_role("heading", name="Snooze 7 guarantors?")).to_be_visible()
    expect(page.get_by_text("You are about to snooze 7 guarantors")).to_be_visible()
    assert not Snooze.objects.exists()
    page.get_by_role("button", name="Snooze 7 guarantors").click()

    expect(page.get_by_role("status").filter(has_text="Snoozed 7 guarantors until")).to_be_visible()
    assert Snooze.objects.count() == 7
    page.get_by_role("link", name=re.compile("^Snoozed")).click()
    page.get_by_role("checkbox", name="Select Pat Number0").check()
    page.get_by_role("checkbox", name="Select Pat Number1").check()
    expect(page.locator("#lift-count")).to_have_text("2 selected.")
    page.get_by_role("button", name="Lift snooze for selected").click()

    expect(page.get_by_text("Snooze lifted for 2 guarantors: back on the list if eligible.")).to_be_visible()
    assert Snooze.objects.filter(lifted_at__isnull=True).count() == 5
    assert AuditEvent.objects.filter(action="snooze.lift").count() == 2
    page.get_by_role("checkbox", name="Select all on this page").check()
    expect(page.locator("#lift-count")).to_have_text("5 selected.")


def test_the_morning_from_login_to_the_last_resend(page: Page, live_server, org: Organization) -> None:
    """The whole workflow as the closing note describes it."""
    make_guarantor(org, "G1", "Marisol", "Quintanilla")
    make_guarantor(org, "G2", "Tom", "Okafor")
    make_guarantor(org, "G3", "Kai", "Kahale", timezone="Pacific/Honolulu")  # before 8:00 there
    make_guarantor(org, "G4", "Ana", "Diaz", email="")  # reached by text only
    make_guarantor(org, "G5", "Walter", "Nobody", mobile_phone="", email="")
    today = organization_today(org)

    log_in(page, live_server, "frontdesk")
    expect(figure(page, "Eligible today")).to_have_text("5")
    tile(page, "Eligible today").click()

    page.get_by_role("button", name="Snooze Tom Okafor").click()
    dialog = page.get_by_role("dialog", name="Snooze Tom Okafor")
    dialog.get_by_label("Re-enrol date").fill((today + timedelta(days=14)).isoformat())
    dialog.get_by_label("Reason", exact=True).select_option("Insurance still processing")
    dialog.get_by_role("button", name="Snooze", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Snoozed Tom Okafor")).to_be_visible()

    page.get_by_role("checkbox", name="Select all", exact=True).check()
    page.get_by_role("button", name="Send", exact=True).click()

    # G1, G3, G4, G5: 8 messages; Kai's two wait for 8:00 in Honolulu; Walter's two have nowhere to go (Ana's
    # missing email is not on the list: her text reaches her); Marisol's two and Ana's text go now.
    banner = page.get_by_role("status").filter(has_text="Payment requests started")
    expect(banner).to_have_text(re.compile(
        r"Payment requests started for 4 guarantors\. Going out now: 3 messages\. Held for quiet hours: 2 "
        r"messages, until \w{3} \d+ at 1[12]:00 [AP]M M[SD]T \(the end of quiet hours in each patient's time "
        r"zone\)\. No mobile number or email: 2 messages, see the Undeliverable list\."
    ))  # fmt: skip
    held = Message.objects.filter(state=State.SCHEDULED)
    assert set(held.values_list("patient__external_id", flat=True)) == {"G3"}

    page.get_by_role("link", name="← Payments").click()
    expect(figure(page, "Held for later")).to_have_text("2")
    expect(tile(page, "Held for later")).to_contain_text(
        re.compile(r"The first go out \w{3} \d+ at 1[12]:00")
    )
    expect(figure(page, "Snoozed")).to_have_text("1")
    expect(figure(page, "Undeliverable")).to_have_text("2")  # Walter's text and email; not Ana's email
    tile(page, "Undeliverable").click()

    rows = page.get_by_role("table").get_by_role("row")
    expect(rows).to_have_count(3)  # the header and Walter's two
    expect(
        page.get_by_role("row", name=re.compile("Walter Nobody.*SMS.*No mobile number on file"))
    ).to_be_visible()
    expect(
        page.get_by_role("row", name=re.compile("Walter Nobody.*Email.*No email address on file"))
    ).to_be_visible()
    expect(page.get_by_text("Ana Diaz")).to_have_count(0)
    page.get_by_role("row", name=re.compile("SMS")).get_by_role(
        "link", name="Open message to Walter Nobody"
    ).click()

    number = page.get_by_role("textbox", name="Mobile number")
    expect(number).to_have_attribute("type", "tel")
    expect(number).to_have_accessible_description(
        re.compile(r"A US mobile number, 10 digits, e\.g\. \(801\) 234-5678")
    )
    box = number.bounding_box()
    assert box is not None and box["width"] >= 240
    number.fill("(801) 555-0123")
    page.get_by_label("The patient consented to receive texts at this number").check()
    page.get_by_role("button", name="Send", exact=True).click()

    expect(page.get_by_text(re.compile(r"Resent to Walter Nobody"))).to_be_visible()
    expect(page.get_by_text("Nothing undeliverable. Every message went out.")).to_be_visible()
    resend = Message.objects.get(resend_of__patient__external_id="G5")
    assert (resend.channel, resend.destination) == (Channel.SMS, "+18015550123")
