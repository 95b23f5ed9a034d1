"""K5 in a real browser: the front desk quick-adds a landline on the undeliverable list and is refused by
Twilio Lookup's line type (through the SDK and the local fake Twilio), then adds a mobile number that goes.

Lookup v2 line_type_intelligence: https://www.twilio.com/docs/lookup/v2-api/line-type-intelligence
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import Page, expect

from notifications.models import Channel, Kind, Message, NumberLookup, State
from notifications.providers.twilio import reset_client
from payments.campaigns import bulk_send
from payments.models import PaymentSettings
from practices.models import Organization, Role
from tests.browser.axe import describe, violations
from tests.browser.conftest import PASSWORD
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.fakes.twilio_server import FAKE_FROM_NUMBER, FakeTwilio

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # pytest-playwright 0.10's base_url fixture under pytest 9 (harmless, ECOSYSTEM.md §8).
    pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning"),
]

LANDLINE = "+18015550111"
MOBILE = "+18015550123"


@pytest.fixture
def fake(settings) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = fake.account_sid, fake.auth_token
        settings.TWILIO_API_BASE_URL, settings.TWILIO_ENABLED = fake.base_url, True
        settings.TWILIO_MESSAGING_SERVICE_SID, settings.TWILIO_FROM_NUMBER = "", FAKE_FROM_NUMBER
        fake.line_types[LANDLINE] = "landline"
        reset_client()
        yield fake
        reset_client()


@pytest.fixture
def org() -> Organization:
    org = OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")
    MembershipFactory.create(
        organization=org, role=Role.FRONT_DESK, user__username="frontdesk", user__password=PASSWORD
    )
    return org


def assert_accessible(page: Page) -> None:
    found = violations(page)
    assert not found, describe(found)


def test_a_landline_is_refused_then_a_mobile_number_goes(page: Page, log_in, org: Organization, fake) -> None:
    PaymentSettings.objects.create(organization=org, request_channels=["sms"])
    patient = GuarantorFactory.create(
        organization=org, external_id="G0011", first_name="Rosa", last_name="Lind", mobile_phone="",
        email="", last_visit_date=date(2026, 1, 15),
    )  # fmt: skip
    AccountFactory.create(guarantor=patient, total="85.00", bucket_0_30="85.00", patient_portion="85.00")
    bulk_send(organization=org, at=timezone.now())
    original = Message.objects.get()
    assert (original.state, original.channel) == (State.UNDELIVERED, Channel.SMS)

    log_in("frontdesk")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Undeliverable").click()
    page.get_by_role("link", name="Open message to Rosa Lind").click()
    page.get_by_role("textbox", name="Mobile number").fill("(801) 555-0111")
    page.get_by_label("The patient consented to receive texts at this number").check()
    page.get_by_role("button", name="Send", exact=True).click()

    alert = page.get_by_role("alert")
    expect(alert).to_have_text(
        "This number is a landline (Qwest Corporation) and cannot receive texts. Nothing was sent and the "
        "number was not saved. Ask the patient for a mobile number."
    )
    assert_accessible(page)
    assert not Message.objects.filter(resend_of=original).exists()
    assert [lookup["number"] for lookup in fake.lookups] == [LANDLINE]

    page.get_by_role("textbox", name="Mobile number").fill("801-555-0123")
    page.get_by_label("The patient consented to receive texts at this number").check()
    page.get_by_role("button", name="Send", exact=True).click()

    expect(page.get_by_text(re.compile(r"Resent to Rosa Lind \(\(•••\) •••-0123\)"))).to_be_visible()
    assert_accessible(page)
    assert [lookup["number"] for lookup in fake.lookups] == [LANDLINE, MOBILE]
    assert set(NumberLookup.objects.values_list("number", "line_type")) == {
        (LANDLINE, "landline"),
        (MOBILE, "mobile"),
    }
    resend = Message.objects.get(resend_of=original)
    assert (resend.kind, resend.destination) == (Kind.RESEND, MOBILE)
    assert fake.messages == []  # the landline was never texted

    # The outbox holds it in quiet hours when the suite runs in the evening: send when it is due.
    due = max(timezone.now(), resend.scheduled_for or timezone.now()) + timedelta(seconds=1)
    with time_machine.travel(due, tick=False):
        out = StringIO()
        call_command("send_due", "--json", stdout=out)
        json.loads(out.getvalue())
    assert [m["To"] for m in fake.accepted()] == [MOBILE]
