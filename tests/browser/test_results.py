"""The Results page in a browser (SPEC §16 V1): a billing manager goes from the Payments home page to Results,
picks a preset, reads the funnel table and the charts by role and name, downloads a table as CSV, and gets a
clear error for a range that ends before it starts. Under the Content-Security-Policy: no console error."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from notifications.models import Channel
from practices.models import Role
from practices.timezones import organization_today
from tests.browser.conftest import PASSWORD
from tests.factories import MembershipFactory, UserFactory
from tests.results import world

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning"),
]


def test_a_billing_manager_reads_the_results(page: Page, live_server: Any) -> None:
    org = world.organization("browser-results")
    today = organization_today(org)
    day = (today - timedelta(days=6)).isoformat()
    bill = world.campaign(org, amount="120.00")
    sms = world.message(bill, channel=Channel.SMS, sent=f"{day} 09:00", delivered=f"{day} 09:01")
    world.message(bill, channel=Channel.EMAIL, sent=f"{day} 09:00")
    world.opened(sms, f"{day} 12:00")
    world.pay(bill, "120.00", f"{day} 12:10")
    user = UserFactory(username="results-billing", password=PASSWORD)
    MembershipFactory(user=user, organization=org, role=Role.BILLING_MANAGER)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(f"{live_server.url}/admin/login/?next=/dashboard/payments/")
    page.get_by_label("Username").fill("results-billing")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Results", exact=True).first.click()
    expect(page.get_by_role("heading", name="Results", exact=True)).to_be_visible()

    page.get_by_role("navigation", name="Presets").get_by_role("link", name="Last 30 days").click()
    expect(page.get_by_label("From", exact=True)).to_have_value((today - timedelta(days=29)).isoformat())
    expect(page.get_by_label("To", exact=True)).to_have_value(today.isoformat())
    funnel = page.get_by_role("table", name="Funnel by channel")
    sms_row = funnel.get_by_role("row", name="SMS")
    expect(sms_row.get_by_role("cell")).to_have_text(
        ["1", "$120.00", "1", "$120.00", "1", "$120.00", "0", "$0.00", "1", "$120.00"]
    )
    expect(funnel.get_by_role("row", name="Email")).to_contain_text("$0.00")
    for name in ("Messages at each stage of the funnel", "Dollars recovered per week",
                 "Undeliverable messages by reason", "Accounts receivable by aging bucket over time"):  # fmt: skip
        expect(page.get_by_role("img", name=name)).to_be_visible()
    expect(page.get_by_role("table", name="Dollars recovered per week")).to_contain_text("$120.00")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download “Funnel by channel” as CSV").click()
    text = download.value.path().read_text()
    assert text.splitlines()[1] == "SMS,1,120.00,1,120.00,1,120.00,0,0.00,1,120.00"

    page.get_by_label("From", exact=True).fill(today.isoformat())
    page.get_by_label("To", exact=True).fill((today - timedelta(days=3)).isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("alert")).to_contain_text("is before the start date")
    refused = [e for e in errors if "Content Security Policy" in e or "Refused" in e]
    assert not refused, refused
