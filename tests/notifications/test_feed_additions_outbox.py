"""SPEC §13.2 at the outbox's pre-send re-check (N1), the one place every message passes: a text to a patient
without SMS consent while the organization requires it is cancelled (``no_sms_consent``), whatever made it (a
payment request, a resend, a text decided before the setting was turned on), and nothing goes to a deceased
patient (``deceased``). What reaches the fake Twilio is read back (tests/fakes/twilio_server.py)."""

from __future__ import annotations

import io

import pytest
import time_machine
from django.core.management import call_command

from notifications.models import Channel, Kind, Message, NotificationSettings, Reason, State, Template
from notifications.outbox import message_create
from payments.campaigns import send_request
from practices.models import Organization
from tests.notifications.test_feed_additions_messages import DAYTIME, import_feed, org, patient, providers

pytestmark = pytest.mark.django_db
__all__ = ["org", "providers"]  # fixtures


def test_a_request_text_to_a_patient_without_consent_is_cancelled_by_the_outbox(org, feed_bytes, providers):
    """The outbox re-check (N1) catches every path: a payment request, or a text decided before the setting
    was turned on."""
    import_feed(feed_bytes, [patient(sms_consent="no", last_visit_date="2026-11-18")], [])
    with time_machine.travel(DAYTIME, tick=False):
        send_request(organization=org, guarantor_id="P1", at=DAYTIME)
        NotificationSettings.objects.update_or_create(
            organization=org, defaults={"require_sms_consent": True}
        )
        call_command("send_due", "--org", org.slug, "--json", stdout=io.StringIO())
    sms = Message.objects.get(channel=Channel.SMS)
    assert (sms.state, sms.reason) == (State.CANCELLED, Reason.NO_SMS_CONSENT)
    assert providers.accepted() == []


def test_a_deceased_patient_is_never_sent_a_message_even_without_a_campaign(org, feed_bytes, providers):
    import_feed(feed_bytes, [patient(deceased=True)], [])
    guarantor = Organization.objects.get().patients.get()
    with time_machine.travel(DAYTIME, tick=False):
        message = message_create(
            Message(organization=org, patient=guarantor, channel=Channel.SMS, kind=Kind.RESEND, body="Hi",
                    destination=guarantor.mobile_phone, template=Template.objects.first()),
            now=DAYTIME,
        )  # fmt: skip
        call_command("send_due", "--org", org.slug, "--json", stdout=io.StringIO())
    message.refresh_from_db()
    assert (message.state, message.reason) == (State.CANCELLED, Reason.DECEASED)
    assert providers.accepted() == []
