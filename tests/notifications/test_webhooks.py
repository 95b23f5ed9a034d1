"""Webhooks (N2, T3): Twilio status callbacks and inbound keywords. Email tracking: test_email_tracking.py."""

from __future__ import annotations

import pytest

from notifications.models import Channel, Kind, Message, OptOut, OptOutEvent, Reason, State
from notifications.providers.twilio import compute_signature
from tests.factories import GuarantorFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

TOKEN = "test-auth-token"
SID = "SM" + "a" * 32


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.PUBLIC_BASE_URL = "https://billing.example.org"


@pytest.fixture
def org():
    return OrganizationFactory.create(
        slug="smile", name="Smile Dental", phone="+18015550199", twilio_from_number="+18015550000"
    )


@pytest.fixture
def patient(org):
    return GuarantorFactory.create(organization=org, mobile_phone="+18015550100", email="ana@example.com")


def sms(patient, state=State.SENT, provider_id=SID) -> Message:
    return Message.objects.create(organization=patient.organization, patient=patient, channel=Channel.SMS,
                                  kind=Kind.REQUEST, body="x", destination=patient.mobile_phone, state=state,
                                  provider_id=provider_id)  # fmt: skip


def signed_post(client, path, data, token=TOKEN):
    signature = compute_signature(url="https://billing.example.org" + path, params=data, auth_token=token)
    return client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signature)


def status(client, message, data):
    return signed_post(client, f"/webhooks/twilio/status/{message.pk}/", {"MessageSid": SID, **data})


# --- status callback ---------------------------------------------------------------------------------


def test_a_signed_delivered_callback_marks_the_message_delivered(client, patient):
    message = sms(patient)
    assert status(client, message, {"MessageStatus": "delivered"}).status_code == 200
    message.refresh_from_db()
    assert message.state == State.DELIVERED
    assert message.delivered_at is not None


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl"])
def test_a_missing_or_bad_signature_is_403_and_changes_nothing(client, patient, signature):
    message = sms(patient)
    headers = {} if signature is None else {"HTTP_X_TWILIO_SIGNATURE": signature}
    response = client.post(
        f"/webhooks/twilio/status/{message.pk}/", {"MessageSid": SID, "MessageStatus": "delivered"}, **headers
    )
    assert response.status_code == 403
    assert Message.objects.get(pk=message.pk).state == State.SENT


def test_a_signature_made_with_another_token_is_403(client, patient):
    message = sms(patient)
    response = signed_post(
        client,
        f"/webhooks/twilio/status/{message.pk}/",
        {"MessageSid": SID, "MessageStatus": "delivered"},
        token="other",
    )
    assert response.status_code == 403


def test_retries_and_out_of_order_callbacks_never_move_backwards(client, patient):
    message = sms(patient)
    for payload in (
        {"MessageStatus": "delivered"},
        {"MessageStatus": "delivered"},
        {"MessageStatus": "sent"},
        {"MessageStatus": "queued"},
    ):
        assert status(client, message, payload).status_code == 200
    assert Message.objects.get(pk=message.pk).state == State.DELIVERED


def test_an_unknown_message_or_sid_answers_200_and_changes_nothing(client, patient):
    message = sms(patient)
    assert (
        signed_post(
            client, "/webhooks/twilio/status/999999/", {"MessageSid": SID, "MessageStatus": "delivered"}
        ).status_code
        == 200
    )
    other = signed_post(
        client,
        f"/webhooks/twilio/status/{message.pk}/",
        {"MessageSid": "SM" + "b" * 32, "MessageStatus": "delivered"},
    )
    assert other.status_code == 200
    assert Message.objects.get(pk=message.pk).state == State.SENT


def test_a_callback_that_beats_our_own_write_of_the_sid_is_applied(client, patient):
    message = sms(patient, state=State.SENDING, provider_id="")
    status(client, message, {"MessageStatus": "sent"})
    message.refresh_from_db()
    assert (message.state, message.provider_id) == (State.SENT, SID)


@pytest.mark.parametrize(
    ("code", "reason"),
    [("30003", Reason.UNREACHABLE), ("30005", Reason.UNKNOWN_HANDSET), ("30006", Reason.LANDLINE), ("21614", Reason.LANDLINE),
     ("21211", Reason.INVALID_NUMBER)],
)  # fmt: skip
@pytest.mark.parametrize("twilio_status", ["undelivered", "failed"])
def test_number_errors_put_the_message_on_the_undeliverable_list(
    client, patient, code, reason, twilio_status
):
    message = sms(patient)
    status(client, message, {"MessageStatus": twilio_status, "ErrorCode": code})
    message.refresh_from_db()
    assert (message.state, message.reason, message.error_code) == (State.UNDELIVERED, reason, code)


def test_21610_in_a_callback_records_an_sms_opt_out(client, patient):
    message = sms(patient)
    status(client, message, {"MessageStatus": "failed", "ErrorCode": "21610"})
    assert OptOut.objects.get(address=patient.mobile_phone, channel="sms").active is True


# --- inbound -----------------------------------------------------------------------------------------


def inbound(client, body, number="+18015550100", **extra):
    return signed_post(
        client, "/webhooks/twilio/inbound/", {"From": number, "To": "+18015550000", "Body": body, **extra}
    )


@pytest.mark.parametrize(
    "body", ["STOP", "stop", " Stop ", "STOPALL", "unsubscribe", "cancel", "END", "quit", "REVOKE", "opt out"]
)
def test_stop_keywords_opt_out_with_time_and_source(client, patient, body):
    assert inbound(client, body).status_code == 200
    opt_out = OptOut.objects.get(
        organization=patient.organization, channel="sms", address=patient.mobile_phone
    )
    assert opt_out.active is True
    assert opt_out.source == "sms_keyword"
    assert OptOutEvent.objects.get().at is not None


@pytest.mark.parametrize("body", ["stop please", "STOP IT", "please stop"])
def test_a_stop_in_a_sentence_is_a_phrase_opt_out_not_a_keyword(client, patient, body):
    # K4 (SPEC §15): revocation "in any reasonable manner"; the keyword is the whole message, a request to stop
    # in other words is read by the phrase table (notifications/revocation.py) and recorded as such.
    inbound(client, body)
    opt_out = OptOut.objects.get(
        organization=patient.organization, channel="sms", address=patient.mobile_phone
    )
    assert opt_out.active is True
    assert opt_out.source == "sms_phrase"


def test_a_stop_cancels_pending_and_scheduled_sms_to_that_number(client, patient):
    pending = sms(patient, state=State.PENDING, provider_id="")
    scheduled = sms(patient, state=State.SCHEDULED, provider_id="")
    sent = sms(patient, state=State.SENT)
    inbound(client, "STOP")
    states = dict(Message.objects.values_list("pk", "state"))
    assert states[pending.pk] == states[scheduled.pk] == State.CANCELLED
    assert states[sent.pk] == State.SENT


@pytest.mark.parametrize("body", ["START", "unstop", "Yes"])
def test_start_keywords_re_subscribe(client, patient, body):
    inbound(client, "STOP")
    inbound(client, body)
    assert OptOut.objects.get().active is False
    assert OptOutEvent.objects.count() == 2


def test_advanced_opt_out_type_is_honoured(client, patient):
    inbound(client, "ARRET", OptOutType="STOP")
    assert OptOut.objects.get().active is True


def test_help_answers_with_the_practice_name_and_phone(client, patient, settings):
    settings.TWILIO_ADVANCED_OPT_OUT = False  # we reply, not Twilio (test_twilio_inbound.py has both)
    response = inbound(client, "help")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Smile Dental" in body
    assert "(801) 555-0199" in body  # national format (issue 12)
    assert not OptOut.objects.exists()


def test_an_unsigned_inbound_message_is_403(client, patient):
    response = client.post("/webhooks/twilio/inbound/", {"From": patient.mobile_phone, "Body": "STOP"})
    assert response.status_code == 403
    assert not OptOut.objects.exists()
