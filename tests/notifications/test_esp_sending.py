"""Email through each ESP's real anymail backend (N3), faked at the network seam only.

The first wave found that every ESP but Postmark failed. Here a message goes through ``message_send`` and
anymail's backend for the ESP; ``responses`` (or botocore's Stubber for Amazon SES, which talks through
boto3) answers as the ESP's API documents. The message must end ``sent`` with the ESP's id, and the ESP's
tracking webhook, posted in its documented shape, must find it by that id and mark it delivered.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

import boto3
import pytest
import responses
from botocore.stub import Stubber

from notifications.models import Channel, Kind, Message, State
from notifications.outbox import message_send
from tests.factories import GuarantorFactory, OrganizationFactory
from tests.notifications.test_email_tracking import SECRET, WORLDS

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)  # midday in Utah: outside quiet hours

# (anymail settings, API URL, documented success response (status, JSON), the id anymail reports)
API: dict[str, tuple[dict[str, str], str, int, Any]] = {
    # https://postmarkapp.com/developer/api/email-api#send-a-single-email
    "postmark": (
        {"POSTMARK_SERVER_TOKEN": "server-token"},
        "https://api.postmarkapp.com/email",
        200,
        {"To": "ana@example.com", "SubmittedAt": "2026-11-24T19:00:00.0000000Z", "ErrorCode": 0, "Message": "OK",
         "MessageID": WORLDS["postmark"].provider_id},
    ),
    # https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send: 202 with an empty body; the id
    # is anymail's own (anymail_id custom arg), which SendGrid's events carry back
    "sendgrid": ({"SENDGRID_API_KEY": "SG.key"}, "https://api.sendgrid.com/v3/mail/send", 202, None),
    # https://documentation.mailgun.com/docs/mailgun/api-reference/send/mailgun/messages
    "mailgun": (
        {"MAILGUN_API_KEY": "key-api", "MAILGUN_WEBHOOK_SIGNING_KEY": "key-mailgun-webhook-signing",
         "MAILGUN_SENDER_DOMAIN": "mg.smile.example"},
        "https://api.mailgun.net/v3/mg.smile.example/messages",
        200,
        {"id": WORLDS["mailgun"].provider_id, "message": "Queued. Thank you."},
    ),
    # https://developers.brevo.com/reference/sendtransacemail: 201 {"messageId": …}
    "brevo": (
        {"BREVO_API_KEY": "xkeysib-key"},
        "https://api.brevo.com/v3/smtp/email",
        201,
        {"messageId": WORLDS["brevo"].provider_id},
    ),
    # https://dev.mailjet.com/email/reference/send-emails/#v3_1_post_send
    "mailjet": (
        {"MAILJET_API_KEY": "public", "MAILJET_SECRET_KEY": "private"},
        "https://api.mailjet.com/v3.1/send",
        200,
        {"Messages": [{"Status": "success", "CustomID": "", "Cc": [], "Bcc": [],
                       "To": [{"Email": "ana@example.com", "MessageUUID": "123e4567-e89b-12d3-a456-426614174000",
                               "MessageID": int(WORLDS["mailjet"].provider_id),
                               "MessageHref": "https://api.mailjet.com/v3/REST/message/1152921504606846976"}]}]},
    ),
}  # fmt: skip


@pytest.fixture
def message():
    org = OrganizationFactory.create(slug="smile", name="Smile Dental", email_from="billing@mg.smile.example")
    patient = GuarantorFactory.create(organization=org, email="ana@example.com")
    return Message.objects.create(organization=org, patient=patient, channel=Channel.EMAIL, kind=Kind.REQUEST,
                                  subject="Your balance", body="Pay at https://pay.example/x", state=State.PENDING,
                                  destination="ana@example.com")  # fmt: skip


def _configure(settings: Any, esp: str, anymail: dict[str, str]) -> None:
    settings.EMAIL_ENABLED = True
    settings.ANYMAIL_ESP = esp
    settings.EMAIL_BACKEND = f"anymail.backends.{esp}.EmailBackend"
    settings.ANYMAIL = {**anymail, "WEBHOOK_SECRET": SECRET}


def _delivered_via_webhook(client: Any, esp: str, message: Message) -> None:
    message.refresh_from_db()
    world = WORLDS[esp]
    assert world.post(client, "delivered", message).status_code == 200
    message.refresh_from_db()
    assert message.state == State.DELIVERED


@pytest.mark.parametrize("esp", API.keys())
@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")  # SendGrid (anymail#432)
def test_a_message_goes_out_through_the_esps_api_and_its_delivery_report_finds_it(
    client, settings, message, esp
):
    anymail, url, status, body = API[esp]
    _configure(settings, esp, anymail)
    with responses.RequestsMock() as api:
        api.post(url, status=status, json=body) if body is not None else api.post(url, status=status, body="")
        assert message_send(message_id=message.pk, now=NOON) == State.SENT
        [call] = api.calls
    message.refresh_from_db()
    assert message.state == State.SENT and message.provider_id
    if esp == "sendgrid":
        [personalization] = json.loads(cast(bytes, call.request.body))["personalizations"]
        assert personalization["custom_args"]["anymail_id"] == message.provider_id
    else:
        assert message.provider_id == WORLDS[esp].provider_id
    _delivered_via_webhook(client, esp, message)


def test_amazon_ses_sends_through_boto3_and_its_sns_delivery_report_finds_it(
    client, settings, message, monkeypatch
):
    """boto3's SES v2 client with botocore's Stubber answering SendEmail as documented
    (https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html: {"MessageId": …})."""
    _configure(settings, "amazon_ses", {"AMAZON_SES_CLIENT_PARAMS": {"region_name": "us-east-1"}})  # type: ignore[dict-item]
    ses = boto3.session.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret").client(
        "sesv2", region_name="us-east-1"
    )
    stub = Stubber(ses)
    stub.add_response("send_email", {"MessageId": WORLDS["amazon_ses"].provider_id})
    monkeypatch.setattr(boto3.session.Session, "client", lambda self, *args, **kwargs: ses)
    with stub:
        assert message_send(message_id=message.pk, now=NOON) == State.SENT
        stub.assert_no_pending_responses()
    message.refresh_from_db()
    assert message.provider_id == WORLDS["amazon_ses"].provider_id
    _delivered_via_webhook(client, "amazon_ses", message)


@pytest.mark.parametrize("esp", ["postmark", "brevo", "mailjet"])
def test_an_esp_that_refuses_the_credentials_does_not_leave_the_message_sending(settings, message, esp):
    anymail, url, _status, _body = API[esp]
    _configure(settings, esp, anymail)
    with responses.RequestsMock() as api:
        api.post(url, status=401, json={"ErrorCode": 10, "Message": "Bad or missing API token"})
        outcome = message_send(message_id=message.pk, now=NOON)
    message.refresh_from_db()
    assert message.state != State.SENDING, outcome


def test_an_esp_setting_missing_at_send_time_holds_the_message_for_another_try(settings, message):
    """Start-up refuses this configuration; if it happens anyway, the message is not left in `sending`."""
    _configure(settings, "brevo", {})
    assert message_send(message_id=message.pk, now=NOON) == State.SCHEDULED
    message.refresh_from_db()
    assert message.state == State.SCHEDULED and "not configured" in message.error_message
