"""The Send banner (B2, issue 12) counts for the undeliverable list only what the list shows: the missing email
of a patient whom the text reaches is not work for the front desk (U1), so the banner does not send them there."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from notifications.models import Channel, Message, State
from practices.models import Role
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 10:00 in Denver


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(AT, tick=False) as traveller:
        yield traveller


def test_a_missing_email_of_a_patient_the_text_reaches_is_not_sent_to_the_undeliverable_list(client):
    org = OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    client.force_login(MembershipFactory.create(organization=org, role=Role.FRONT_DESK).user)
    for external_id, mobile in (("G1", "+18015550100"), ("G2", "")):
        patient = GuarantorFactory.create(organization=org, external_id=external_id, mobile_phone=mobile,
                                          email="", last_visit_date=date(2026, 10, 1))  # fmt: skip
        AccountFactory.create(guarantor=patient, bucket_0_30=Decimal("90.00"), total=Decimal("90.00"),
                              patient_portion=Decimal("90.00"), aging_category="0_30")  # fmt: skip

    response = client.post(
        reverse("payments_dashboard:send", args=[org.slug]), {"select_all": "1"}, follow=True
    )

    assert [str(m) for m in response.context["messages"]] == [
        "Payment requests started for 2 guarantors. Going out now: 1 message. No mobile number or email: 2 "
        "messages, see the Undeliverable list."
    ]  # G1's text goes; G2's text and email are listed; G1's missing email is not
    assert Message.objects.filter(state=State.UNDELIVERED).count() == 3
    assert Message.objects.get(patient__external_id="G1", channel=Channel.SMS).state == State.PENDING
