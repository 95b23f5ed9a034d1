"""The billing manager's settings in a real browser, as issue 12 found them (Billing manager): the practice's
settings are there without pressing Add, reached from the organization and back, titled by its name, with
the default reset field ticked; choosing a preset in the searchable drop-down redraws its schedule before
anything is saved (htmx, under the site's Content-Security-Policy)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.utils import timezone
from django.utils.formats import date_format
from playwright.sync_api import ConsoleMessage, Page, expect

from dunning.models import DunningSettings
from practices.models import AuditEvent, Organization, Role
from practices.services import organization_create
from tests.browser.conftest import PASSWORD
from tests.factories import MembershipFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # pytest-playwright 0.10's base_url fixture under pytest 9 (harmless, ECOSYSTEM.md §8).
    pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning"),
]


@pytest.fixture
def org() -> Organization:
    org = organization_create(slug="smile-dental", name="Smile Dental", timezone_name="America/Denver")
    MembershipFactory.create(
        organization=org, role=Role.BILLING_MANAGER, user__username="manager", user__password=PASSWORD
    )
    return org


@pytest.fixture
def csp_violations(page: Page) -> Iterator[list[str]]:
    """What the browser refused under the Content-Security-Policy (an inline script or style)."""
    refused: list[str] = []

    def record(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on("console", record)
    yield refused


def test_the_settings_are_reached_from_the_organization_and_show_the_defaults(
    page: Page, log_in, org: Organization, csp_violations: list[str]
) -> None:
    log_in("manager", "/admin/")
    main = page.get_by_role("main")
    main.get_by_role("link", name="Organizations").click()
    main.get_by_role("link", name="Smile Dental").click()
    main.get_by_role("link", name="Dunning settings").click()

    expect(page.get_by_role("heading", name="Dunning settings of Smile Dental")).to_be_visible()
    expect(page.get_by_role("checkbox", name="Amount due")).to_be_checked()
    expect(page.get_by_role("checkbox", name="Due date")).not_to_be_checked()
    # Back to the organization, and on to its payment settings: every default list ticked.
    main.get_by_role("link", name="Smile Dental").click()
    expect(main.get_by_role("heading", name="Smile Dental")).to_be_visible()
    main.get_by_role("link", name="Payment settings").click()
    expect(page.get_by_role("heading", name="Payment settings of Smile Dental")).to_be_visible()
    for label in ("0-30 days", "31-60 days", "61-90 days", "Over 90 days", "SMS", "Email"):
        expect(page.get_by_role("checkbox", name=label, exact=True)).to_be_checked()
    assert csp_violations == []


def test_choosing_a_preset_redraws_its_schedule_before_saving(
    page: Page, log_in, org: Organization, csp_violations: list[str]
) -> None:
    settings = DunningSettings.objects.get(organization=org)
    log_in("manager", f"/admin/dunning/dunningsettings/{settings.pk}/change/")
    schedule = page.locator("#preset-schedule").get_by_role("table")
    expect(schedule.get_by_role("row")).to_have_count(1 + 15)  # Standard 30-day: 15 steps
    expect(page.locator("#preset-cycle-days")).to_have_text("30")

    page.get_by_role("combobox", name="Standard 30-day").click()
    page.keyboard.type("accel")  # select2 puts the focus in its search field
    page.get_by_role("option", name="Accelerated 14-day").click()

    expect(
        page.get_by_text("Not saved yet: the schedule of “Accelerated 14-day” applies once you save")
    ).to_be_visible()
    expect(page.locator("#preset-cycle-days")).to_have_text("14")
    expect(page.locator("#preset-paper-cycle-days")).to_have_text("28")
    expect(schedule.get_by_role("row", name="1 5 Reminder SMS System default")).to_be_visible()
    settings.refresh_from_db()
    assert settings.preset is not None and settings.preset.slug == "standard-30"  # nothing saved yet

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    settings.refresh_from_db()
    assert settings.preset is not None and settings.preset.slug == "accelerated-14"

    # The audit of the change reads "label: old → new", and its time is the practice's, the zone named.
    page.get_by_role("navigation", name="Sidebar").get_by_role("link", name="Audit events").click()
    main = page.get_by_role("main")
    expect(main.get_by_text("Dunning configuration: Standard 30-day → Accelerated 14-day")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Times are in America/Denver \(M[SD]T\)\."))).to_be_visible()
    event = AuditEvent.objects.get(action="admin.change")
    shown = date_format(timezone.localtime(event.created_at, org.tzinfo), "DATETIME_FORMAT")
    row = main.get_by_role("row").filter(has_text="admin.change")
    expect(row.get_by_role("link", name=shown, exact=True)).to_be_visible()
    assert csp_violations == []
