"""K2 (frequency cap per guarantor and household) and K1's state limits, through the real send path: messages
are created through the outbox and sent by the tick (``messages_send_due``) through the SMS channel to the local
fake of Twilio and the email channel to anymail's test backend; what reached the providers is asserted.

Massachusetts' limit is 940 CMR 7.04(1)(f): two texts (or calls) in each seven-day period."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.models import Channel, Kind, Message, NotificationSettings, Reason, State
from notifications.outbox import message_create, messages_send, messages_send_due
from notifications.providers.twilio import reset_client
from tests.factories import GuarantorFactory, OrganizationFactory
from tests.fakes.twilio_server import FAKE_FROM_NUMBER, FakeTwilio

pytestmark = pytest.mark.django_db

DENVER = ZoneInfo("America/Denver")
MONDAY = datetime(
    2026, 3, 9, 10, 0, tzinfo=DENVER
)  # every send below is at 10:00 in Denver, inside the window


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


@pytest.fixture
def org():
    org = OrganizationFactory.create(slug="capped", timezone="America/Denver")
    NotificationSettings.objects.create(organization=org, frequency_cap="3/7d")
    return org


def person(org, pid, *, phone="+18015550100", email="", state="UT", zip_code="84101"):
    return GuarantorFactory.create(organization=org, external_id=pid, mobile_phone=phone, email=email,
                                   address_state=state, address_zip=zip_code, timezone="America/Denver",
                                   timezone_source="zip")  # fmt: skip


def send(patient, at, *, channel=Channel.SMS, kind=Kind.REMINDER) -> Message:
    """Create a message at ``at`` and run the tick then; the message as it ends."""
    destination = patient.mobile_phone if channel == Channel.SMS else patient.email
    with time_machine.travel(at, tick=False):
        message = message_create(
            Message(organization=patient.organization, patient=patient, channel=channel, kind=kind,
                    subject="Your balance", body="Your balance is due. Reply STOP to opt out.", destination=destination),
            now=at,
        )  # fmt: skip
        messages_send_due(now=at)
    message.refresh_from_db()
    return message


def tick(at):
    with time_machine.travel(at, tick=False):
        return messages_send_due(now=at)


def test_the_fourth_message_in_seven_days_is_held_to_the_first_day_it_fits_and_then_sent(org, providers):
    ana = person(org, "P1")
    for day in range(3):
        assert send(ana, MONDAY + timedelta(days=day)).state == State.SENT
    fourth = send(ana, MONDAY + timedelta(days=3))
    assert (fourth.state, fourth.reason) == (State.SCHEDULED, Reason.FREQUENCY_CAP)
    # The first of the three leaves the 7-day window at Monday+7 10:00: that is when the fourth fits.
    assert fourth.scheduled_for == (MONDAY + timedelta(days=7)).astimezone(UTC)
    assert "3 messages to this guarantor in 7 days (cap 3/7d)" in fourth.hold_detail
    tick(MONDAY + timedelta(days=6, hours=23))
    assert Message.objects.get(pk=fourth.pk).state == State.SCHEDULED
    tick(MONDAY + timedelta(days=7))
    fourth.refresh_from_db()
    assert (fourth.state, fourth.reason, fourth.hold_detail) == (State.SENT, "", "")
    assert len(providers.messages) == 4  # never dropped


def test_the_household_shares_the_cap_across_sms_email_and_paper(org, providers):
    """Two guarantors at one mobile number are one household: Ana's text and email and the letter mailed to
    Ben fill the cap for both."""
    ana = person(org, "P1", email="ana@example.com")
    ben = person(org, "P2")  # the same mobile number, no email
    assert send(ana, MONDAY).state == State.SENT
    assert send(ana, MONDAY + timedelta(days=1), channel=Channel.EMAIL).state == State.SENT
    Message.objects.create(
        organization=org,
        patient=ben,
        channel=Channel.PAPER,
        kind=Kind.STATEMENT,
        state=State.SENT,
        sent_at=MONDAY + timedelta(days=2),
        postal_address={"line1": "1 Main St"},
    )  # fmt: skip  (a letter in a mailed batch)
    held = send(ben, MONDAY + timedelta(days=3))
    assert (held.state, held.reason) == (State.SCHEDULED, Reason.HOUSEHOLD_CAP)
    assert "household" in held.hold_detail
    assert held.scheduled_for == (MONDAY + timedelta(days=7)).astimezone(UTC)
    # Somebody else at another number is not held.
    carl = person(org, "P3", phone="+18015550177")
    assert send(carl, MONDAY + timedelta(days=3)).state == State.SENT
    assert [m["To"] for m in providers.messages] == ["+18015550100", "+18015550177"]
    assert len(mail.outbox) == 1


def test_a_staff_resend_is_counted_but_allowed(org, providers):
    ana = person(org, "P1")
    for day in range(3):
        send(ana, MONDAY + timedelta(days=day))
    resend = send(ana, MONDAY + timedelta(days=3), kind=Kind.RESEND)
    assert resend.state == State.SENT
    # ... and counted: the next reminder waits for two messages to age out (Monday+8 10:00).
    nxt = send(ana, MONDAY + timedelta(days=4))
    assert (nxt.state, nxt.reason) == (State.SCHEDULED, Reason.FREQUENCY_CAP)
    assert nxt.scheduled_for == (MONDAY + timedelta(days=8)).astimezone(UTC)


def test_a_massachusetts_debtor_gets_at_most_two_texts_in_seven_days_but_email_goes(providers):
    org = OrganizationFactory.create(
        slug="boston", timezone="America/New_York"
    )  # no cap set: the law still holds
    boston = ZoneInfo("America/New_York")
    dana = GuarantorFactory.create(organization=org, mobile_phone="+16175550143", email="dana@example.com",
                                   address_state="MA", address_zip="02108", timezone="America/New_York",
                                   timezone_source="zip")  # fmt: skip
    start = datetime(2026, 3, 9, 11, 0, tzinfo=boston)
    assert send(dana, start).state == State.SENT
    assert send(dana, start + timedelta(days=1)).state == State.SENT
    third = send(dana, start + timedelta(days=2))
    assert (third.state, third.reason) == (State.SCHEDULED, Reason.STATE_LIMIT)
    assert "940 CMR 7.04(1)(f)" in third.hold_detail
    assert third.scheduled_for == (start + timedelta(days=7)).astimezone(UTC)
    assert send(dana, start + timedelta(days=2), channel=Channel.EMAIL).state == State.SENT


def _chunk(org, count, at):
    patients = [person(org, f"Q{i}", phone=f"+1801555{i:04d}") for i in range(count)]
    with time_machine.travel(at, tick=False):
        return [
            message_create(Message(organization=org, patient=p, channel=Channel.SMS, kind=Kind.REMINDER,
                                   body="Due. Reply STOP to opt out.", destination=p.mobile_phone), now=at).pk
            for p in patients
        ]  # fmt: skip


def _queries(ids, at) -> int:
    with time_machine.travel(at, tick=False), CaptureQueriesContext(connection) as queries:
        messages_send(ids, now=at)
    return len(queries)


@pytest.mark.parametrize("count", [5, 20])
def test_the_checks_add_no_query_per_message_to_a_chunk(providers, count, django_assert_num_queries):
    """The cap and the state rules cost two queries per chunk (households, then their messages), whatever its
    size; the claim and the sent update stay the only per-message queries."""
    plain = OrganizationFactory.create(slug="plain", timezone="America/Denver")
    base = _queries(_chunk(plain, count, MONDAY), MONDAY)
    capped = OrganizationFactory.create(slug="cap-on", timezone="America/Denver")
    NotificationSettings.objects.create(organization=capped, frequency_cap="3/7d", send_on_sundays=False,
                                        send_on_holidays=False)  # fmt: skip
    ids = _chunk(capped, count, MONDAY)
    with time_machine.travel(MONDAY, tick=False), django_assert_num_queries(base + 2):
        states = messages_send(ids, now=MONDAY)
    assert states == [State.SENT] * count
