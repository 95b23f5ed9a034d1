"""Attribution (SPEC §16 V2): each message's link names the message (``?m=``), the token unchanged (P1);
opening it records which message it came from; a verified date of birth counts for the most recent opened
message of the campaign."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client

from notifications import paylinks
from notifications.models import Channel, Message
from notifications.paylinks import PAY_URL, message_id_from_ref, message_ref, with_pay_url
from payments.links import hash_token, payment_ref, token_for
from payments.models import LinkEvent, LinkEventKind, PaymentLink
from tests.results import world

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize("message_id", [1, 35, 36, 12345, 2**62])
def test_a_message_ref_is_its_id_in_base_36_and_back(message_id):
    ref = message_ref(message_id)
    assert re.fullmatch(r"[0-9a-z]+", ref) and len(ref) <= 13
    assert message_id_from_ref(ref) == message_id
    assert message_id_from_ref(ref.upper()) == message_id


@pytest.mark.parametrize("ref", ["", "0", "-1", "ab_c", "x" * 14, "../1", "１２"])
def test_anything_else_names_no_message(ref):
    assert message_id_from_ref(ref) is None


def _linked_message(bill, channel):
    ref = payment_ref()
    PaymentLink.objects.create(
        organization=bill.organization, bill=bill, token_hash=hash_token(token_for(ref)),
        expires_at=datetime(2027, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    message = world.message(bill, channel=channel, sent="2026-11-24 09:00")
    Message.objects.filter(pk=message.pk).update(
        body=f"Pay at {PAY_URL}", context={"pay_ref": ref, "amount_due_value": "100.00"}
    )
    message.refresh_from_db()
    return message, token_for(ref)


def test_the_link_sent_names_the_message_and_keeps_the_token():
    org = world.organization()
    bill = world.campaign(org)
    message, token = _linked_message(bill, Channel.SMS)
    body = with_pay_url(message.body, message.context, message_id=message.pk)
    assert body == f"Pay at http://testserver/p/{token}/?m={message_ref(message.pk)}"
    assert (
        paylinks.pay_url(message.context) == f"http://testserver/p/{token}/"
    )  # without a message: as before


@time_machine.travel(NOW, tick=False)
def test_opening_a_link_records_its_message_and_verifying_counts_for_the_one_opened_last(client: Client):
    org = world.organization()
    bill = world.campaign(org)
    sms, token = _linked_message(bill, Channel.SMS)
    email = world.message(bill, channel=Channel.EMAIL, sent="2026-11-24 09:00")
    other_campaign_message = world.message(
        world.campaign(org), channel=Channel.EMAIL, sent="2026-11-24 09:00"
    )

    assert client.get(f"/p/{token}/", {"m": message_ref(sms.pk)}).status_code == 200
    with time_machine.travel(datetime(2026, 11, 24, 17, 5, tzinfo=UTC), tick=False):
        assert client.get(f"/p/{token}/", {"m": message_ref(email.pk)}).status_code == 200
    for ref in (message_ref(other_campaign_message.pk), "not-a-ref", ""):
        assert client.get(f"/p/{token}/", {"m": ref}).status_code == 200  # the page works; nothing recorded
    opened = list(
        LinkEvent.objects.filter(event=LinkEventKind.OPENED)
        .order_by("at")
        .values_list("message_id", "channel")
    )
    assert opened == [(sms.pk, "sms"), (email.pk, "email")]

    with time_machine.travel(datetime(2026, 11, 24, 17, 10, tzinfo=UTC), tick=False):
        response = client.post(f"/p/{token}/", {"step": "verify", "dob": "04/1980"})
    assert response.status_code == 302
    verified = LinkEvent.objects.get(event=LinkEventKind.VERIFIED)
    assert verified.message_id == email.pk  # the most recent opened message of the campaign
    assert verified.bill_id == bill.pk


@time_machine.travel(datetime(2026, 11, 24, 18, 0, tzinfo=UTC), tick=False)  # 11:00 in Denver: no quiet hours
def test_the_email_that_leaves_names_its_message(settings):
    from django.core import mail

    from notifications.models import State
    from notifications.outbox import message_send

    org = world.organization()
    bill = world.campaign(org)
    message, token = _linked_message(bill, Channel.EMAIL)
    Message.objects.filter(pk=message.pk).update(
        state=State.PENDING, sent_at=None, destination="ana@example.com", subject="Your balance"
    )

    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.EMAIL_ENABLED = True

    assert message_send(message_id=message.pk) == State.SENT

    assert f"http://testserver/p/{token}/?m={message_ref(message.pk)}" in mail.outbox[0].body
    assert PAY_URL in Message.objects.get(pk=message.pk).body  # the stored body keeps the placeholder (T4)
