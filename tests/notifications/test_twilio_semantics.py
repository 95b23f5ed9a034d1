"""Twilio's codes mean the same thing at send time and in a status callback (N1, N2, U1, T3).

Sending goes through the real twilio SDK to the local fake of Twilio's Messages API
(``tests/fakes/twilio_server.py``): Twilio's test-credential magic To numbers
(https://www.twilio.com/docs/iam/test-credentials: +15005550002 → 21612, …0004 → 21610, …0009 → 21614) and
injected errors in Twilio's 400 error body ({"code", "message", "more_info", "status"},
https://www.twilio.com/docs/usage/twilios-response). Status callbacks are the fake's form in the shape of
https://www.twilio.com/docs/messaging/guides/track-outbound-message-status (MessageSid, MessageStatus,
ErrorCode, AccountSid, From, To, ApiVersion, SmsSid, SmsStatus), posted to the StatusCallback URL the fake
received and signed with the account's auth token as Twilio signs (X-Twilio-Signature)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from notifications.models import Channel, Kind, Message, OptOut, OptOutEvent, Reason, State
from notifications.outbox import message_send, message_transition
from notifications.providers.twilio import reset_client
from notifications.selectors import undeliverable_messages
from practices.models import Role
from tests.factories import GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.fakes.twilio_server import FAKE_FROM_NUMBER, FakeTwilio
from tests.notifications.test_undeliverable import LIST_URL, ROW_LINK

pytestmark = pytest.mark.django_db

DAYTIME = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)  # 11:00 in Denver
PATIENT = "+18015550100"


@pytest.fixture
def twilio(settings) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = fake.account_sid, fake.auth_token
        settings.TWILIO_API_BASE_URL, settings.TWILIO_ENABLED = fake.base_url, True
        settings.TWILIO_MESSAGING_SERVICE_SID, settings.TWILIO_FROM_NUMBER = "", FAKE_FROM_NUMBER
        settings.PUBLIC_BASE_URL = "https://billing.example.org"
        reset_client()
        yield fake
        reset_client()


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile", name="Smile Dental", timezone="America/Denver")


@pytest.fixture
def front_desk(org):
    return MembershipFactory.create(organization=org, role=Role.FRONT_DESK).user


def _pending(org, number: str = PATIENT, **fields) -> Message:
    patient = GuarantorFactory.create(organization=org, mobile_phone=number, timezone="America/Denver")
    return Message.objects.create(organization=org, patient=patient, channel=Channel.SMS, kind=Kind.REQUEST,
                                  body="Smile Dental: $120 due. Pay at https://pay.example/p/x Reply STOP to opt out",
                                  destination=number, **fields)  # fmt: skip


def _sent(org, twilio: FakeTwilio, number: str = PATIENT) -> Message:
    message = _pending(org, number)
    assert message_send(message_id=message.pk, now=DAYTIME) == State.SENT
    message.refresh_from_db()
    assert twilio.accepted()[-1]["sid"] == message.provider_id
    assert twilio.accepted()[-1]["To"] == number
    return message


def _callback(client, twilio: FakeTwilio, message: Message, status: str, error_code=None, **kw):
    url, params, signature = twilio.signed_status_callback(message.provider_id, status, error_code, **kw)
    assert url == f"https://billing.example.org/webhooks/twilio/status/{message.pk}/"
    return client.post(urlsplit(url).path, params, HTTP_X_TWILIO_SIGNATURE=signature)


def _listed(user) -> set[int]:
    """The messages the front desk's undeliverable page lists (its row links), as the user sees it; the page
    and the selector behind it must agree."""
    client = Client()
    client.force_login(user)
    response = client.get(LIST_URL)
    assert response.status_code == 200
    shown = {int(pk) for pk in ROW_LINK.findall(response.text)}
    assert shown == set(undeliverable_messages(user=user).values_list("pk", flat=True))
    return shown


def _carrier_filtered_in_admin(admin_client) -> set[int]:
    response = admin_client.get(
        reverse("admin:notifications_message_changelist"), {"problem": "carrier_filtered"}
    )
    assert response.status_code == 200
    return {message.pk for message in response.context["cl"].result_list}


# --- send time ---------------------------------------------------------------------------------------


def test_21610_at_send_time_records_an_opt_out_and_cancels_off_the_list(twilio, org, front_desk):
    message = _pending(org, "+15005550004")
    later = _pending(org, "+15005550004")

    assert message_send(message_id=message.pk, now=DAYTIME) == State.CANCELLED

    assert [(m["To"], m["error_code"], m["sid"]) for m in twilio.messages] == [("+15005550004", 21610, None)]
    message.refresh_from_db()
    assert (message.state, message.reason, message.error_code) == (State.CANCELLED, Reason.OPTED_OUT, "21610")
    opt_out = OptOut.objects.get(organization=org, channel="sms", address="+15005550004")
    assert (opt_out.active, opt_out.source) == (True, "provider_error")
    # The opt-out stops the other texts to that number at once, and nothing is on the front desk's list.
    assert Message.objects.get(pk=later.pk).state == State.CANCELLED
    assert _listed(front_desk) == set()


@pytest.mark.parametrize(
    ("number", "code", "reason"),
    [("+15005550002", 21612, Reason.UNREACHABLE_ROUTE), ("+15005550009", 21614, Reason.LANDLINE),
     ("+15005550001", 21211, Reason.INVALID_NUMBER), ("+15005550003", 21408, Reason.UNREACHABLE_ROUTE)],
)  # fmt: skip
def test_a_number_refused_at_send_time_is_undelivered_on_the_list(
    twilio, org, front_desk, number, code, reason
):
    message = _pending(org, number)

    assert message_send(message_id=message.pk, now=DAYTIME) == State.UNDELIVERED

    assert [(m["To"], m["error_code"]) for m in twilio.messages] == [(number, code)]
    message.refresh_from_db()
    assert (message.state, message.reason, message.error_code) == (State.UNDELIVERED, reason, str(code))
    assert _listed(front_desk) == {message.pk}
    assert not OptOut.objects.exists()


def test_30007_at_send_time_is_failed_carrier_filtered_shown_to_ops_not_the_front_desk(
    twilio, org, front_desk, admin_client
):
    twilio.fail_next(status=400, code=30007, message="Message filtered")
    message = _pending(org)

    assert message_send(message_id=message.pk, now=DAYTIME) == State.FAILED

    assert [(m["To"], m["error_code"]) for m in twilio.messages] == [(PATIENT, 30007)]
    message.refresh_from_db()
    assert (message.state, message.reason, message.error_code) == (
        State.FAILED,
        Reason.CARRIER_FILTERED,
        "30007",
    )
    assert _listed(front_desk) == set()
    assert _carrier_filtered_in_admin(admin_client) == {message.pk}
    assert not OptOut.objects.exists()


# --- status callbacks --------------------------------------------------------------------------------


@pytest.mark.parametrize("twilio_status", ["failed", "undelivered"])
def test_21610_in_a_callback_cancels_records_one_opt_out_and_stays_off_the_list(
    client, twilio, org, front_desk, twilio_status
):
    # With a Messaging Service Twilio accepts the message first and reports the opt-out afterwards.
    message = _sent(org, twilio)
    pending = _pending(org)

    for _ in range(2):  # Twilio retries a callback it got no answer to
        assert _callback(client, twilio, message, twilio_status, 21610).status_code == 200

    message.refresh_from_db()
    assert (message.state, message.reason, message.error_code) == (State.CANCELLED, Reason.OPTED_OUT, "21610")
    opt_out = OptOut.objects.get(organization=org, channel="sms", address=PATIENT)
    assert (opt_out.active, opt_out.source) == (True, "provider_error")
    assert OptOutEvent.objects.filter(opt_out=opt_out).count() == 1
    assert Message.objects.get(pk=pending.pk).state == State.CANCELLED
    assert _listed(front_desk) == set()


def test_21610_in_a_callback_that_beats_our_write_of_the_sid_cancels_the_sending_message(client, twilio, org):
    message = _sent(org, twilio)
    Message.objects.filter(pk=message.pk).update(state=State.SENDING, provider_id="")

    _callback(client, twilio, message, "failed", 21610)

    message.refresh_from_db()
    assert (message.state, message.reason, message.provider_id) == (
        State.CANCELLED,
        Reason.OPTED_OUT,
        twilio.accepted()[0]["sid"],
    )


def test_an_ordinary_cancel_never_ends_a_message_twilio_has_taken(twilio, org):
    """N1: only the 21610 callback moves a sent message to cancelled; the pre-send re-check's and an
    opt-out's cancel (``message_transition(to=CANCELLED)``) find no allowed move."""
    message = _sent(org, twilio)

    assert message_transition(message_id=message.pk, to=State.CANCELLED, reason=Reason.OPTED_OUT) is False
    assert Message.objects.get(pk=message.pk).state == State.SENT


# 30007 message filtered, 30032 toll-free number not verified, 30034 US A2P 10DLC number not registered:
# Twilio's error dictionary (https://www.twilio.com/docs/api/errors/30007, …/30032, …/30034); the sender's
# registration is ops' to fix, not the front desk's with another patient number.
@pytest.mark.parametrize("code", [30007, 30032, 30034])
def test_a_carrier_block_in_a_callback_is_failed_carrier_filtered_off_the_list_and_in_the_admin_filter(
    client, twilio, org, front_desk, admin_client, code
):
    message = _sent(org, twilio)

    assert _callback(client, twilio, message, "undelivered", code).status_code == 200

    message.refresh_from_db()
    assert (message.state, message.reason, message.error_code) == (
        State.FAILED,
        Reason.CARRIER_FILTERED,
        str(code),
    )
    assert _listed(front_desk) == set()
    assert _carrier_filtered_in_admin(admin_client) == {message.pk}
    assert not OptOut.objects.exists()


@pytest.mark.parametrize(
    ("code", "reason"),
    [(30003, Reason.UNREACHABLE), (30005, Reason.UNKNOWN_HANDSET), (30006, Reason.LANDLINE),
     (21614, Reason.LANDLINE)],
)  # fmt: skip
@pytest.mark.parametrize("twilio_status", ["undelivered", "failed"])
def test_a_number_problem_in_a_callback_is_undelivered_on_the_list(
    client, twilio, org, front_desk, code, reason, twilio_status
):
    message = _sent(org, twilio)

    assert _callback(client, twilio, message, twilio_status, code).status_code == 200

    message.refresh_from_db()
    assert (message.state, message.reason, message.error_code) == (State.UNDELIVERED, reason, str(code))
    assert _listed(front_desk) == {message.pk}
    assert not OptOut.objects.exists()


def test_delivered_then_a_late_sent_changes_nothing(client, twilio, org):
    message = _sent(org, twilio)

    assert _callback(client, twilio, message, "delivered").status_code == 200
    delivered = Message.objects.get(pk=message.pk)
    assert _callback(client, twilio, message, "sent").status_code == 200
    assert _callback(client, twilio, message, "failed", 21610).status_code == 200

    message.refresh_from_db()
    assert (message.state, message.delivered_at, message.updated_at) == (
        State.DELIVERED,
        delivered.delivered_at,
        delivered.updated_at,
    )
    assert not OptOut.objects.exists()


def test_a_callback_for_an_unknown_sid_answers_200_and_changes_nothing(client, twilio, org):
    message = _sent(org, twilio)
    other = _sent(org, twilio, "+18015550111")
    # Signed correctly, but for another message's SID at this message's URL.
    params = twilio.status_callback_params(other.provider_id, "failed", 21610)
    url = f"https://billing.example.org/webhooks/twilio/status/{message.pk}/"
    response = client.post(urlsplit(url).path, params, HTTP_X_TWILIO_SIGNATURE=twilio.sign(url, params))

    assert response.status_code == 200
    assert set(Message.objects.values_list("state", flat=True)) == {State.SENT}
    assert not OptOut.objects.exists()


def test_a_callback_signed_with_another_token_is_403_and_changes_nothing(client, twilio, org):
    message = _sent(org, twilio)

    assert _callback(client, twilio, message, "failed", 21610, auth_token="not-the-token").status_code == 403

    assert Message.objects.get(pk=message.pk).state == State.SENT
    assert not OptOut.objects.exists()


def test_the_front_desks_page_lists_the_landline_but_not_the_opt_out_or_the_filtered_text(
    client, twilio, org, front_desk
):
    landline, stopped, filtered = (
        _sent(org, twilio),
        _sent(org, twilio, "+18015550111"),
        _sent(org, twilio, "+18015550122"),
    )
    _callback(client, twilio, landline, "undelivered", 30006)
    _callback(client, twilio, stopped, "failed", 21610)
    _callback(client, twilio, filtered, "undelivered", 30007)
    client.force_login(front_desk)

    page = client.get(reverse("notifications_dashboard:undeliverable"))

    assert page.status_code == 200
    assert set(map(int, re.findall(r'href="/dashboard/undeliverable/(\d+)/"', page.content.decode()))) == {
        landline.pk
    }


def test_a_delivered_callback_that_beats_our_write_of_sent_delivers_the_message(client, twilio, org):
    """Issue 11: Twilio's delivery report for a fast handset can arrive before our own `sent` write commits;
    it was dropped (`sending` could not move to `delivered`) and the message stayed `sent` for ever."""
    message = _sent(org, twilio)
    Message.objects.filter(pk=message.pk).update(state=State.SENDING, provider_id="")

    assert _callback(client, twilio, message, "delivered").status_code == 200

    message.refresh_from_db()
    assert (message.state, message.provider_id) == (State.DELIVERED, twilio.accepted()[0]["sid"])
    assert message.delivered_at is not None
