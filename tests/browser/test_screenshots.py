"""The README's "Morning workflow" screenshots, taken on the demo data (``seed_demo``) at 1280x800: the Payments
home page, the bulk list, the Send banner, the Snoozed tab and a guarantor page.

Skipped unless SCREENSHOTS_DIR is set; ``scripts/screenshots.py`` sets it to docs/screenshots/ and runs this.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import Page, expect

from practices.demo import DEMO_PASSWORD, seed_demo
from practices.timezones import organization_today

SCREENSHOTS_DIR = os.environ.get("SCREENSHOTS_DIR", "")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning"),
    pytest.mark.skipif(
        not SCREENSHOTS_DIR, reason="set SCREENSHOTS_DIR (scripts/screenshots.py) to take them"
    ),
]


@pytest.fixture
def morning() -> Iterator[None]:
    """09:30 in the demo practice's zone (America/Denver), so that requests go out rather than wait."""
    denver = ZoneInfo("America/Denver")
    today = timezone.now().astimezone(denver).date()
    with time_machine.travel(datetime.combine(today, time(9, 30), tzinfo=denver), tick=True):
        yield


def test_morning_workflow_screenshots(page: Page, live_server, morning: None) -> None:
    out = Path(SCREENSHOTS_DIR)
    out.mkdir(parents=True, exist_ok=True)
    organization, _logins, _summary = seed_demo()
    today = organization_today(organization)

    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("frontdesk")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Payments", exact=True)).to_be_visible()
    page.screenshot(path=out / "0-home.png")
    page.get_by_role("link", name="Bulk payment request", exact=True).click()
    expect(page.get_by_role("heading", name="Bulk payment request")).to_be_visible()

    # Snooze a row through its clock dialog, then select everyone but one for Send.
    page.locator("td.row-action button").nth(2).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Re-enrol date").fill((today + timedelta(days=14)).isoformat())
    dialog.get_by_label("Reason", exact=True).select_option("Insurance still processing")
    dialog.get_by_role("button", name="Snooze", exact=True).click()
    expect(page.locator(".undo-banner")).to_contain_text("Snoozed ")
    page.get_by_role("checkbox", name="Select all", exact=True).check()
    page.locator('#eligible input[name="selected"]').nth(1).uncheck()
    page.mouse.click(5, 400)  # move the focus off the form fields
    page.screenshot(path=out / "1-bulk-list.png")

    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_text("Payment requests started for")).to_be_visible()
    page.screenshot(path=out / "2-sent.png")

    page.get_by_role("link", name="Snoozed").click()
    expect(page.get_by_role("button", name="Lift snooze for selected")).to_be_visible()
    page.screenshot(path=out / "3-snoozed.png")

    page.locator("table.data a").first.click()
    expect(page.get_by_role("heading", name="Payment request", exact=True)).to_be_visible()
    page.screenshot(path=out / "4-guarantor.png")


def test_results_screenshot(page: Page, live_server, morning: None) -> None:
    """The README's Results screenshot: the demo practice's last 90 days (its history, ``payments.results.demo``), as a
    billing manager sees it."""
    out = Path(SCREENSHOTS_DIR)
    out.mkdir(parents=True, exist_ok=True)
    organization, _logins, _summary = seed_demo()

    page.goto(f"{live_server.url}/admin/login/?next=/dashboard/results/{organization.slug}/")
    page.get_by_label("Username").fill("billing")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Results", exact=True)).to_be_visible()
    expect(page.get_by_role("table", name="Funnel by channel")).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 1500})
    page.screenshot(path=out / "5-results.png")
