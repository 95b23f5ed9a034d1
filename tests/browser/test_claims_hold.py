"""K6 in a real browser (issue 15: each held message names its reason on the guarantor page): the front desk
opens a claims-held guarantor's page, finds "Reminders and notices" by its heading and reads why the reminders
wait, with the claims and the limit. The hold is the real engine's (``run_dunning`` on a statement whose
guarantor has more open claims than ``max_open_claims``); axe runs on the page (tests/browser/axe.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from dunning.engine import run_dunning
from dunning.models import DunningSettings, Preset, PresetStep
from payments.models import PaymentSettings
from practices.models import Bill, Organization, Role
from practices.timezones import organization_today
from tests.browser.axe import describe, violations
from tests.browser.conftest import PASSWORD
from tests.factories import GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.payments.factories import BillFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # pytest-playwright 0.10's base_url fixture under pytest 9 (harmless, ECOSYSTEM.md §8).
    pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning"),
]


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 18, 0, tzinfo=UTC)  # noon in Denver


@pytest.fixture
def org() -> Organization:
    org = OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")
    preset = Preset.objects.create(slug="k6-browser", name="K6", cycle_days=30, paper_cycle_days=30)
    for age, kind, channel in [(0, "statement", "sms"), (10, "reminder", "sms"), (30, "final", "sms")]:
        PresetStep.objects.create(preset=preset, bill_age_days=age, kind=kind, channel=channel)
    DunningSettings.objects.create(organization=org, preset=preset)
    PaymentSettings.objects.update_or_create(organization=org, defaults={"max_open_claims": 0})
    MembershipFactory.create(
        organization=org, role=Role.FRONT_DESK, user__username="frontdesk", user__password=PASSWORD
    )
    return org


def test_the_front_desk_reads_why_a_guarantors_reminders_wait_for_insurance(page: Page, log_in, org) -> None:
    ana = GuarantorFactory.create(organization=org, external_id="G1", first_name="Ana", last_name="Diaz",
                                  mobile_phone="+18015550100", open_claims=2)  # fmt: skip
    today = organization_today(org)
    BillFactory.create(organization=org, guarantor=ana, bill_id="S-77", amount_due="84.50",
                       effective_created_date=today - timedelta(days=12))  # fmt: skip
    run_dunning(organization=org, on=today, now=noon(today))  # day 12: statement and reminder due, both held
    assert Bill.objects.get().claims_held

    log_in("frontdesk", reverse("payments_dashboard:guarantor", args=[org.slug, "G1"]))

    heading = page.get_by_role("heading", name="Reminders and notices")
    expect(heading).to_be_visible()
    section = page.get_by_role("region", name="Reminders and notices")
    expect(section).to_contain_text("Held for insurance: 2 open claims, the organization allows at most 0")
    expect(section).to_contain_text("Max open claims")
    expect(section).to_contain_text("Reminders resume on their own")
    expect(section).to_contain_text("only the latest missed step on each channel is sent")
    table = section.get_by_role("table", name="Bills owing of Ana Diaz and their reminder schedule")
    row = table.get_by_role("row").filter(has_text="S-77")
    expect(row).to_contain_text("$84.50")
    expect(row).to_contain_text("Held for insurance")
    expect(row).to_contain_text("Reminder held")
    expect(row.get_by_role("cell", name="none yet")).to_be_visible()
    found = violations(page)
    assert not found, describe(found)
