"""``send_due`` (SPEC §10): the outbox tick's work now, in this process, through the real channels.

SMS goes through the twilio SDK to the local fake of Twilio's Messages API (``tests/fakes/twilio_server.py``,
Twilio's documented request and error shapes, magic number +15005550009 = error 21614); email through
anymail's test backend, which records what the ESP would have received."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from io import StringIO

import pytest
import time_machine
from django.core import mail
from django.core.management import CommandError, call_command

from notifications.models import Channel, Kind, Message, State
from notifications.outbox import message_create
from notifications.providers.twilio import reset_client
from practices.models import Bill, BillState
from tests.factories import GuarantorFactory, OrganizationFactory
from tests.fakes.anymail import sent_params
from tests.fakes.twilio_server import FAKE_FROM_NUMBER, FakeTwilio

pytestmark = pytest.mark.django_db

DAYTIME = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)  # 11:00 in Denver, 13:00 in New York
EVENING = datetime(2026, 11, 25, 4, 30, tzinfo=UTC)  # 21:30 in Denver: quiet hours


@pytest.fixture
def providers(settings) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = fake.account_sid, fake.auth_token
        settings.TWILIO_API_BASE_URL, settings.TWILIO_ENABLED = fake.base_url, True
        settings.TWILIO_MESSAGING_SERVICE_SID, settings.TWILIO_FROM_NUMBER = "", FAKE_FROM_NUMBER
        settings.EMAIL_BACKEND, settings.EMAIL_ENABLED = "anymail.backends.test.EmailBackend", True
        reset_client()
        yield fake
        reset_client()


def _create(patient, *, at=DAYTIME, channel=Channel.SMS, destination=None, bill=None) -> Message:
    if destination is None:
        destination = patient.mobile_phone if channel == Channel.SMS else patient.email
    with time_machine.travel(at, tick=False):
        return message_create(
            Message(organization=patient.organization, patient=patient, channel=channel, kind=Kind.REQUEST,
                    subject="Your balance", body="Hi Ana, pay at https://pay.example/p/x. Reply STOP to opt out.",
                    destination=destination, bill=bill, generation=1),
            now=at,
        )  # fmt: skip


def _send_due(*args: str) -> dict[str, int]:
    out = StringIO()
    call_command("send_due", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_it_sends_what_is_due_through_the_providers_and_reports_each_outcome(providers):
    org = OrganizationFactory.create(slug="smile", timezone="America/Denver")
    ana = GuarantorFactory.create(organization=org, mobile_phone="+18015550100", email="ana@example.com",
                           timezone="America/Denver")  # fmt: skip
    sms = _create(ana)
    email = _create(ana, channel=Channel.EMAIL)
    landline = _create(GuarantorFactory.create(organization=org, mobile_phone="+15005550009"))
    paid_bill = Bill.objects.create(
        organization=org, guarantor=ana, bill_id="S-9", source="statement", amount_due="10.00", created_at=DAYTIME,
        effective_created_date=DAYTIME.date(), last_seen_at=DAYTIME,
    )  # fmt: skip
    ended = _create(ana, bill=paid_bill)
    Bill.objects.filter(pk=paid_bill.pk).update(state=BillState.PAID)
    # At DAYTIME it is 03:00 in Tokyo: the recipient's quiet hours hold the message (Q1).
    held = _create(
        GuarantorFactory.create(organization=org, mobile_phone="+18015550122", timezone="Asia/Tokyo")
    )
    assert held.state == State.SCHEDULED

    with time_machine.travel(DAYTIME, tick=False):
        counts = _send_due("--org", "smile")

    assert counts == {"sent": 2, "held": 1, "cancelled": 1, "failed": 0, "undelivered": 1}
    assert [(m["To"], m["sid"] is not None) for m in providers.messages if m.get("sid")] == [
        ("+18015550100", True)
    ]
    assert [(m.to, sent_params(m)["metadata"]) for m in mail.outbox] == [
        (["ana@example.com"], {"message_id": str(email.pk)})
    ]
    states = dict(Message.objects.values_list("pk", "state"))
    assert (states[sms.pk], states[email.pk], states[landline.pk], states[ended.pk], states[held.pk]) == (
        State.SENT, State.SENT, State.UNDELIVERED, State.CANCELLED, State.SCHEDULED,
    )  # fmt: skip


def test_held_messages_go_once_their_time_has_come_and_a_second_pass_sends_nothing(providers):
    org = OrganizationFactory.create(slug="smile", timezone="America/Denver")
    held = _create(GuarantorFactory.create(organization=org, mobile_phone="+18015550100", timezone="America/Denver"),
                   at=EVENING)  # fmt: skip
    morning = held.scheduled_for
    with time_machine.travel(morning, tick=False):
        assert _send_due()["sent"] == 1
        assert _send_due() == {"sent": 0, "held": 0, "cancelled": 0, "failed": 0, "undelivered": 0}
    assert len([m for m in providers.messages if m.get("sid")]) == 1


def test_with_org_it_leaves_other_organizations_and_paper_alone(providers):
    org = OrganizationFactory.create(slug="smile", timezone="America/Denver")
    other = _create(
        GuarantorFactory.create(
            organization=OrganizationFactory.create(slug="other"), mobile_phone="+18015550111"
        )
    )
    letter = _create(
        GuarantorFactory.create(organization=org, address_line1="1 Main St", address_city="Salt Lake City",
                         address_zip="84101"),
        channel=Channel.PAPER, destination="",
    )  # fmt: skip
    with time_machine.travel(DAYTIME, tick=False):
        assert _send_due("--org", "smile")["sent"] == 0
    assert Message.objects.get(pk=other.pk).state == State.PENDING
    assert Message.objects.get(pk=letter.pk).state == letter.state
    assert providers.messages == []


def test_an_unknown_organization_exits_2():
    with pytest.raises(CommandError, match="unknown organization 'nope'") as raised:
        call_command("send_due", "--org", "nope", stdout=StringIO())
    assert raised.value.returncode == 2
