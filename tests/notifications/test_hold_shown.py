"""A held message names its reason where staff look (K1, Q1): the guarantor page's payment requests and the bulk
page's Pending tab show why each message waits and until when."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from notifications.models import Message, NotificationSettings, Reason, State
from payments.campaigns import campaign_start
from payments.models import RequestMode
from practices.models import Role
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

MIAMI = ZoneInfo("America/New_York")


def test_the_guarantor_page_shows_why_a_request_waits_and_until_when(client):
    # A practice that narrowed its quiet hours to 22:00-07:00; Florida allows texts from 08:00 (Fla. Stat.
    # § 559.72(17)); e-mail is exempt there since SB 232 (2025), so the email goes at once.
    org = OrganizationFactory.create(slug="miami-dental", timezone="America/New_York")
    NotificationSettings.objects.create(organization=org, quiet_start="22:00", quiet_end="07:00")
    ana = GuarantorFactory.create(organization=org, external_id="G1", mobile_phone="+13055550143",
                                  email="ana@example.com", address_state="FL", address_zip="33130",
                                  timezone="America/New_York", timezone_source="zip")  # fmt: skip
    AccountFactory.create(guarantor=ana, patient_portion="120.00", bucket_0_30="120.00", total="120.00")
    at = datetime(2026, 11, 24, 7, 30, tzinfo=MIAMI)
    with time_machine.travel(at, tick=False):
        campaign_start(organization=org, guarantor=ana, mode=RequestMode.SINGLE, at=at)
    sms = Message.objects.get(channel="sms")
    assert (sms.state, sms.reason) == (State.SCHEDULED, Reason.STATE_HOURS)
    assert Message.objects.get(channel="email").state == State.PENDING

    membership = MembershipFactory.create(organization=org, role=Role.FRONT_DESK)
    client.force_login(membership.user)
    with time_machine.travel(at, tick=False):
        page = client.get(reverse("payments_dashboard:guarantor", args=[org.slug, "G1"])).content.decode()
    assert (
        "Held: outside the hours the recipient&#x27;s state allows: Florida, 08:00–21:00 debtor&#x27;s time"
        in page
    )
    assert "Fla. Stat. § 559.72(17)" in page
    assert "goes Nov 24, 8:00 AM" in page
