"""Email tracking webhooks (N3, T3) for each ESP, with payloads in that ESP's own documented format.

Each ESP posts to ``/webhooks/anymail/<esp>/tracking/``; anymail's view authenticates and parses it, and
``notifications.email_events`` applies it. The payloads follow each ESP's documentation (field names,
nesting, value formats), cited at each builder. Outcomes are read where people see them: the message's
state, the undeliverable list, the opt-out table and its events.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from notifications.models import Channel, Kind, Message, OptOut, OptOutEvent, ProviderEvent, Reason, State
from notifications.optouts import opt_out_set
from notifications.selectors import undeliverable_filter
from tests.factories import GuarantorFactory, OrganizationFactory

pytestmark = [
    pytest.mark.django_db,
    # anymail 15 still ships SendGrid but no longer supports it officially (anymail#432): docs/decisions.md
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]

SECRET = "hook:secret"
MAILGUN_SIGNING_KEY = "key-mailgun-webhook-signing"
ADDRESS = "ana@example.com"
WHEN = "2026-11-24T10:00:00Z"
EPOCH = 1795514400  # 2026-11-24T10:00:00Z


def _auth(auth: str | None) -> dict[str, Any]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}


# --- each ESP's documented payloads ----------------------------------------------------------------------
# A builder takes (scenario, message) and returns (body, content type, extra headers). Scenarios:
# delivered, hard_bounce, soft_bounce, complaint, unsubscribe, dropped_unsubscribed, resubscribe, failed.


def postmark(scenario: str, message: Message) -> tuple[str, dict[str, str]]:
    """https://postmarkapp.com/developer/webhooks/delivery-webhook, …/bounce-webhook (Type and TypeCode from
    https://postmarkapp.com/developer/api/bounce-api#bounce-types), …/spam-complaint-webhook,
    …/subscription-change-webhook."""
    common = {
        "MessageID": message.provider_id,
        "ServerID": 23,
        "MessageStream": "outbound",
        "Tag": "request",
        "Metadata": {"message_id": str(message.pk)},
    }
    bounce = {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Name": "Hard bounce",
        "Email": ADDRESS,
        "From": "billing@smile.example",
        "BouncedAt": WHEN,
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Your balance",
        "Content": "",
        **common,
    }
    change = {
        "RecordType": "SubscriptionChange",
        "Recipient": ADDRESS,
        "Origin": "Recipient",
        "ChangedAt": WHEN,
        **common,
    }
    payloads: dict[str, dict[str, Any]] = {
        "delivered": {
            "RecordType": "Delivery",
            "Recipient": ADDRESS,
            "DeliveredAt": WHEN,
            "Details": "Test delivery webhook details",
            **common,
        },
        "hard_bounce": {
            **bounce,
            "Type": "HardBounce",
            "TypeCode": 1,
            "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        },
        "soft_bounce": {
            **bounce,
            "Type": "SoftBounce",
            "TypeCode": 4096,
            "Name": "Soft bounce",
            "Description": "Unable to temporarily deliver this email message.",
            "Details": "mailbox full",
        },
        "complaint": {
            **bounce,
            "RecordType": "SpamComplaint",
            "Type": "SpamComplaint",
            "TypeCode": 512,
            "Name": "Spam complaint",
            "Description": "",
            "Details": "Test spam complaint details",
        },
        "unsubscribe": {**change, "SuppressSending": True, "SuppressionReason": "ManualSuppression"},
        "resubscribe": {**change, "SuppressSending": False, "SuppressionReason": None},
        "failed": {
            **bounce,
            "Type": "TemplateRenderingFailed",
            "TypeCode": 2097152,
            "Name": "Template rendering failed",
            "Description": "The template could not be rendered.",
            "Details": "",
        },
    }
    return json.dumps(payloads[scenario]), {}


def sendgrid(scenario: str, message: Message) -> tuple[str, dict[str, str]]:
    """https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event (an array of events; the
    send's custom_args, anymail_id and our message_id, come back as top-level keys)."""
    common = {
        "email": ADDRESS,
        "timestamp": EPOCH,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "category": ["request"],
        "anymail_id": message.provider_id,
        "message_id": str(message.pk),
    }
    events: dict[str, dict[str, Any]] = {
        "delivered": {"event": "delivered", "response": "250 OK", "sg_event_id": "rWVYmVk90MjZJ9iohOBa3w"},
        "hard_bounce": {
            "event": "bounce",
            "type": "bounce",
            "status": "5.0.0",
            "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPw",
            "reason": "500 unknown recipient",
            "bounce_classification": "Invalid Address",
        },
        "soft_bounce": {
            "event": "bounce",
            "type": "blocked",
            "status": "4.0.0",
            "sg_event_id": "bB5mzA2wRvKOg11TZ4JrnQ",
            "reason": "421 mailbox temporarily unavailable",
            "bounce_classification": "Technical",
        },
        "complaint": {"event": "spamreport", "sg_event_id": "37nvH5QBz858KGVYCM4uOA"},
        "unsubscribe": {"event": "unsubscribe", "sg_event_id": "zz_BjPgU_5pS-J8vlfB1sg"},
        "dropped_unsubscribed": {
            "event": "dropped",
            "reason": "Unsubscribed Address",
            "status": "5.0.0",
            "sg_event_id": "zmzJhfJgAfUSOW80yEbPyw",
        },
        "resubscribe": {
            "event": "group_resubscribe",
            "asm_group_id": 10,
            "sg_event_id": "w_u0vJhLT-OFfprar5N93g",
            "useragent": "Mozilla/4.0",
            "ip": "255.255.255.255",
        },
    }
    return json.dumps([{**common, **events[scenario]}]), {}


def mailgun(scenario: str, message: Message) -> tuple[str, dict[str, str]]:
    """https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/webhook-payloads (event-data),
    signed as https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks says:
    HMAC-SHA256 of timestamp + token with the webhook signing key. Suppressed sends fail with reason
    suppress-unsubscribe/-complaint/-bounce (https://documentation.mailgun.com/docs/mailgun/user-manual/events/)."""
    token = hashlib.sha256(f"{scenario}{message.pk}".encode()).hexdigest()[:50]
    timestamp = str(EPOCH)
    signature = hmac.new(
        MAILGUN_SIGNING_KEY.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    common = {
        "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "timestamp": EPOCH + 0.5,
        "log-level": "info",
        "recipient": ADDRESS,
        "recipient-domain": "example.com",
        "tags": ["request"],
        "user-variables": {"message_id": str(message.pk)},
        "envelope": {"transport": "smtp", "sender": "billing@mg.smile.example", "targets": ADDRESS},
        "message": {
            "headers": {
                "to": ADDRESS,
                "message-id": message.provider_id.strip("<>"),
                "from": "billing@mg.smile.example",
                "subject": "Your balance",
            },
            "attachments": [],
            "size": 111,
        },
    }
    failed = {
        "event": "failed",
        "log-level": "error",
        "severity": "permanent",
        "reason": "bounce",
        "delivery-status": {
            "code": 550,
            "attempt-no": 1,
            "description": "",
            "message": "5.1.1 The email account that you tried to reach does not exist.",
        },
    }
    events: dict[str, dict[str, Any]] = {
        "delivered": {
            "event": "delivered",
            "delivery-status": {"code": 250, "message": "OK", "attempt-no": 1},
        },
        "hard_bounce": failed,
        "soft_bounce": {**failed, "severity": "temporary", "reason": "generic", "log-level": "warn"},
        "complaint": {"event": "complained"},
        "unsubscribe": {"event": "unsubscribed"},
        "dropped_unsubscribed": {
            **failed,
            "reason": "suppress-unsubscribe",
            "delivery-status": {
                "code": 605,
                "message": "Not delivering to previously unsubscribed address",
                "attempt-no": 1,
                "description": "",
            },
        },
        "failed": {
            "event": "rejected",
            "reject": {"reason": "Sandbox subdomains are for test purposes only"},
        },
    }
    body = {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {**common, **events[scenario]},
    }
    return json.dumps(body), {}


def brevo(scenario: str, message: Message) -> tuple[str, dict[str, str]]:
    """https://developers.brevo.com/docs/transactional-webhooks (one event per POST; metadata comes back in
    X-Mailin-custom, ts_epoch in milliseconds)."""
    common = {
        "email": ADDRESS,
        "id": 1234567,
        "date": "2026-11-24 11:00:00",
        "ts": EPOCH,
        "ts_event": EPOCH,
        "ts_epoch": EPOCH * 1000,
        "message-id": message.provider_id,
        "subject": "Your balance",
        "tag": "request",
        "sending_ip": "185.41.28.109",
        "X-Mailin-custom": json.dumps({"message_id": str(message.pk)}),
    }
    events: dict[str, dict[str, Any]] = {
        "delivered": {"event": "delivered"},
        "hard_bounce": {"event": "hard_bounce", "reason": "550 5.1.1 user unknown"},
        "soft_bounce": {"event": "soft_bounce", "reason": "452 4.2.2 mailbox full"},
        "complaint": {"event": "spam"},
        # the event is named "unsubscribe" in the payload (https://developers.brevo.com/changelog/2024/8/30)
        "unsubscribe": {"event": "unsubscribe"},
        "failed": {"event": "error", "reason": "Sender not valid"},
    }
    return json.dumps({**common, **events[scenario]}), {}


def amazon_ses(scenario: str, message: Message) -> tuple[str, dict[str, str]]:
    """SES event publishing through SNS: https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html
    inside the SNS HTTP notification of https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html
    (bounce types: https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html#bounce-types)."""
    mail = {
        "timestamp": WHEN,
        "source": "billing@smile.example",
        "messageId": message.provider_id,
        "destination": [ADDRESS],
        "headersTruncated": False,
        "headers": [{"name": "X-Metadata", "value": json.dumps({"message_id": str(message.pk)})}],
        "tags": {"ses:configuration-set": ["dunning"]},
    }
    recipient = [
        {
            "emailAddress": ADDRESS,
            "action": "failed",
            "status": "5.1.1",
            "diagnosticCode": "smtp; 550 5.1.1 user unknown",
        }
    ]
    events: dict[str, dict[str, Any]] = {
        "delivered": {
            "eventType": "Delivery",
            "delivery": {
                "timestamp": WHEN,
                "processingTimeMillis": 546,
                "recipients": [ADDRESS],
                "smtpResponse": "250 ok",
                "reportingMTA": "a8-70.smtp-out.amazonses.com",
            },
        },
        "hard_bounce": {
            "eventType": "Bounce",
            "bounce": {
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": recipient,
                "timestamp": WHEN,
                "feedbackId": "0100-hard",
            },
        },
        "soft_bounce": {
            "eventType": "Bounce",
            "bounce": {
                "bounceType": "Transient",
                "bounceSubType": "MailboxFull",
                "bouncedRecipients": recipient,
                "timestamp": WHEN,
                "feedbackId": "0100-soft",
            },
        },
        "complaint": {
            "eventType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": ADDRESS}],
                "timestamp": WHEN,
                "feedbackId": "0100-complaint",
                "complaintFeedbackType": "abuse",
            },
        },
        "failed": {
            "eventType": "Rendering Failure",
            "failure": {
                "templateName": "request",
                "errorMessage": "Attribute 'amount' is not present in the rendering data.",
            },
        },
    }
    sns_id = hashlib.md5(f"{scenario}{message.pk}".encode()).hexdigest()
    sns = {
        "Type": "Notification",
        "MessageId": sns_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps({**events[scenario], "mail": mail}),
        "Timestamp": WHEN,
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+..",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-example.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }
    headers = {
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification",
        "HTTP_X_AMZ_SNS_MESSAGE_ID": sns_id,
        "HTTP_X_AMZ_SNS_TOPIC_ARN": sns["TopicArn"],
    }
    return json.dumps(sns), headers


def mailjet(scenario: str, message: Message) -> tuple[str, dict[str, str]]:
    """https://dev.mailjet.com/email/guides/webhooks/ (event fields; the send's EventPayload comes back in
    Payload, MessageID is a number)."""
    common = {
        "time": EPOCH,
        "email": ADDRESS,
        "mj_campaign_id": 7257,
        "mj_contact_id": 4,
        "customcampaign": "",
        "MessageID": int(message.provider_id),
        "Message_GUID": "1ab23cd4-e567-8901-2345-6789f0gh1i2j",
        "CustomID": "",
        "Payload": json.dumps({"message_id": str(message.pk)}),
    }
    bounce = {
        "event": "bounce",
        "blocked": False,
        "comment": "",
        "error_related_to": "recipient",
        "error": "user unknown",
    }
    events: dict[str, dict[str, Any]] = {
        "delivered": {
            "event": "sent",
            "mj_message_id": message.provider_id,
            "smtp_reply": "sent (250 2.0.0 OK)",
        },
        "hard_bounce": {**bounce, "hard_bounce": True},
        "soft_bounce": {**bounce, "hard_bounce": False, "error": "quota exceeded"},
        "complaint": {"event": "spam", "source": "JMRPP"},
        "unsubscribe": {
            "event": "unsub",
            "mj_list_id": 1,
            "ip": "127.0.0.1",
            "geo": "FR",
            "agent": "Mozilla/5.0",
        },
        "failed": {"event": "blocked", "error_related_to": "content", "error": "content blocked"},
    }
    return json.dumps({**common, **events[scenario]}), {}


class World:
    def __init__(
        self,
        esp: str,
        builder: Callable[[str, Message], tuple[str, dict[str, str]]],
        provider_id: str,
        settings_extra: dict[str, str] | None = None,
    ) -> None:
        self.esp, self.builder, self.provider_id = esp, builder, provider_id
        self.settings_extra = settings_extra or {}

    def post(self, client: Client, scenario: str, message: Message, auth: str | None = SECRET) -> Any:
        body, headers = self.builder(scenario, message)
        extra: dict[str, Any] = {**_auth(auth), **headers}
        return client.post(
            f"/webhooks/anymail/{self.esp}/tracking/", body, content_type="application/json", **extra
        )

    def scenarios(self) -> set[str]:
        probe = Message(pk=1, provider_id=self.provider_id)
        found = set()
        for scenario in (
            "delivered",
            "hard_bounce",
            "soft_bounce",
            "complaint",
            "unsubscribe",
            "dropped_unsubscribed",
            "resubscribe",
            "failed",
        ):
            try:
                self.builder(scenario, probe)
            except KeyError:
                continue
            found.add(scenario)
        return found


WORLDS = {
    "postmark": World("postmark", postmark, "883953f4-6105-42a2-a16a-77a8eac79483"),
    "sendgrid": World("sendgrid", sendgrid, "2f0e8f4a-7b1d-4c33-9d8e-5a6b7c8d9e0f"),
    "mailgun": World(
        "mailgun",
        mailgun,
        "<20261124100000.1.ABCDEF@mg.smile.example>",
        {"MAILGUN_API_KEY": "key-api", "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY},
    ),
    "brevo": World("brevo", brevo, "<202611241000.12345678901@smtp-relay.mailin.fr>"),
    "amazon_ses": World(
        "amazon_ses", amazon_ses, "0100019380a1b2c3-d4e5f6a7-1111-2222-3333-444455556666-000000"
    ),
    "mailjet": World("mailjet", mailjet, "1152921504606846976"),
}


def cases(*scenarios: str) -> list[Any]:
    return [
        pytest.param(world, scenario, id=f"{name}-{scenario}")
        for name, world in WORLDS.items()
        for scenario in scenarios
        if scenario in world.scenarios()
    ]


@pytest.fixture
def patient():
    org = OrganizationFactory.create(slug="smile", name="Smile Dental", phone="+18015550199")
    return GuarantorFactory.create(organization=org, mobile_phone="+18015550100", email=ADDRESS)


@pytest.fixture
def configure(settings):
    def apply(world: World, *, secret: str | None = SECRET) -> None:
        settings.EMAIL_ENABLED = True
        settings.ANYMAIL_ESP = world.esp
        settings.ANYMAIL = {**world.settings_extra, **({"WEBHOOK_SECRET": secret} if secret else {})}

    return apply


def email(patient, world: World, state: str = State.SENT) -> Message:
    return Message.objects.create(
        organization=patient.organization,
        patient=patient,
        channel=Channel.EMAIL,
        kind=Kind.REQUEST,
        body="x",
        subject="Your balance",
        destination=ADDRESS,
        state=state,
        provider_id=world.provider_id,
    )


def on_the_list(message: Message) -> bool:
    return undeliverable_filter(Message.objects.filter(pk=message.pk)).exists()


# --- outcomes per ESP ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("world", "scenario"), cases("delivered"))
def test_a_delivery_report_marks_the_email_delivered(client, patient, configure, world, scenario):
    configure(world)
    message = email(patient, world)
    assert world.post(client, scenario, message).status_code == 200
    message.refresh_from_db()
    assert message.state == State.DELIVERED and message.delivered_at is not None


@pytest.mark.parametrize(("world", "scenario"), cases("hard_bounce", "soft_bounce"))
def test_a_bounce_before_delivery_puts_the_email_on_the_undeliverable_list(
    client, patient, configure, world, scenario
):
    configure(world)
    message = email(patient, world)
    assert world.post(client, scenario, message).status_code == 200
    message.refresh_from_db()
    if world.esp == "mailgun" and scenario == "soft_bounce":
        # Mailgun's temporary failure (severity temporary) is a deferral to anymail: Mailgun retries.
        assert message.state == State.SENT
        return
    assert (message.state, message.reason) == (State.UNDELIVERED, Reason.BOUNCED)
    assert on_the_list(message)


@pytest.mark.parametrize(("world", "scenario"), cases("hard_bounce"))
def test_a_hard_bounce_after_delivery_moves_the_email_back_to_undelivered(
    client, patient, configure, world, scenario
):
    configure(world)
    message = email(patient, world, state=State.DELIVERED)
    assert world.post(client, scenario, message).status_code == 200
    message.refresh_from_db()
    assert (message.state, message.reason) == (State.UNDELIVERED, Reason.BOUNCED)
    assert on_the_list(message)


@pytest.mark.parametrize(("world", "scenario"), cases("soft_bounce"))
def test_a_soft_bounce_after_delivery_changes_nothing(client, patient, configure, world, scenario):
    configure(world)
    message = email(patient, world, state=State.DELIVERED)
    assert world.post(client, scenario, message).status_code == 200
    assert Message.objects.get(pk=message.pk).state == State.DELIVERED


@pytest.mark.parametrize(("world", "scenario"), cases("failed"))
def test_an_esp_failure_puts_the_email_on_the_undeliverable_list(client, patient, configure, world, scenario):
    configure(world)
    message = email(patient, world)
    assert world.post(client, scenario, message).status_code == 200
    message.refresh_from_db()
    assert message.state == State.UNDELIVERED
    assert message.reason in (Reason.PROVIDER_FAILED, Reason.REJECTED)
    assert on_the_list(message)


@pytest.mark.parametrize(("world", "scenario"), cases("complaint", "unsubscribe"))
def test_complaints_and_unsubscribes_are_an_email_opt_out_not_a_bad_address(
    client, patient, configure, world, scenario
):
    configure(world)
    message = email(patient, world, state=State.DELIVERED)
    assert world.post(client, scenario, message).status_code == 200
    opt_out = OptOut.objects.get(organization=patient.organization, channel=Channel.EMAIL, address=ADDRESS)
    assert opt_out.active
    assert opt_out.source == ("email_complaint" if scenario == "complaint" else "email_unsubscribe")
    message.refresh_from_db()
    assert message.state == State.DELIVERED and not on_the_list(message)


@pytest.mark.parametrize(("world", "scenario"), cases("dropped_unsubscribed"))
def test_a_send_dropped_for_an_unsubscribed_address_is_an_opt_out_off_the_list(
    client, patient, configure, world, scenario
):
    configure(world)
    message = email(patient, world)
    assert world.post(client, scenario, message).status_code == 200
    message.refresh_from_db()
    assert (message.state, message.reason) == (State.CANCELLED, Reason.OPTED_OUT)
    assert not on_the_list(message)
    assert OptOut.objects.get(channel=Channel.EMAIL, address=ADDRESS).source == "email_unsubscribe"


@pytest.mark.parametrize(("world", "scenario"), cases("resubscribe"))
def test_a_resubscribe_clears_the_esps_opt_out_and_is_recorded(client, patient, configure, world, scenario):
    configure(world)
    message = email(patient, world, state=State.DELIVERED)
    opt_out_set(
        organization=patient.organization,
        channel=Channel.EMAIL,
        address=ADDRESS,
        active=True,
        source="email_unsubscribe",
    )
    assert world.post(client, scenario, message).status_code == 200
    opt_out = OptOut.objects.get(channel=Channel.EMAIL, address=ADDRESS)
    assert not opt_out.active and opt_out.source == "email_resubscribe"
    assert opt_out.events.filter(active=False, source="email_resubscribe").count() == 1


@pytest.mark.parametrize(("world", "scenario"), cases("resubscribe"))
def test_a_resubscribe_at_the_esp_leaves_an_opt_out_staff_recorded(
    client, patient, configure, world, scenario
):
    configure(world)
    message = email(patient, world, state=State.DELIVERED)
    opt_out_set(
        organization=patient.organization, channel=Channel.EMAIL, address=ADDRESS, active=True, source="staff"
    )
    assert world.post(client, scenario, message).status_code == 200
    assert OptOut.objects.get(channel=Channel.EMAIL, address=ADDRESS).active


@pytest.mark.parametrize(("world", "scenario"), cases("complaint", "hard_bounce"))
def test_a_retried_event_changes_nothing_and_records_nothing_twice(
    client, patient, configure, world, scenario
):
    configure(world)
    message = email(patient, world)
    for _ in range(3):
        assert world.post(client, scenario, message).status_code == 200
    assert OptOutEvent.objects.count() == (1 if scenario == "complaint" else 0)
    assert ProviderEvent.objects.filter(provider=f"anymail-{world.esp}").count() == 1


@pytest.mark.parametrize("world", WORLDS.values(), ids=WORLDS.keys())
def test_bad_or_missing_basic_auth_changes_nothing(client, patient, configure, world):
    configure(world)
    message = email(patient, world)
    for auth in ("hook:wrong", None):
        # 401 from SES's view: SNS sends the URL's credentials only after a basic-auth challenge
        # (https://docs.aws.amazon.com/sns/latest/dg/sns-http-https-endpoint-as-subscriber.html)
        assert world.post(client, "hard_bounce", message, auth=auth).status_code in (400, 401, 403)
    assert Message.objects.get(pk=message.pk).state == State.SENT
    assert not ProviderEvent.objects.exists()


@pytest.mark.parametrize("world", WORLDS.values(), ids=WORLDS.keys())
def test_without_the_webhook_secret_the_tracking_url_is_refused(client, patient, configure, world):
    """T3: no webhook is ever open, also outside production (which refuses to start without the secret)."""
    configure(world, secret=None)
    message = email(patient, world)
    assert world.post(client, "hard_bounce", message, auth=None).status_code == 403
    assert Message.objects.get(pk=message.pk).state == State.SENT


@pytest.mark.parametrize("world", WORLDS.values(), ids=WORLDS.keys())
def test_a_malformed_body_with_valid_auth_is_400_not_500(client, patient, configure, world):
    configure(world)
    message = email(patient, world)
    headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification", "HTTP_X_AMZ_SNS_MESSAGE_ID": "x"}
    for body in ("{not json", "[1, 2", '{"unexpected": "shape"}', "\x00\xff"):
        response = client.post(
            f"/webhooks/anymail/{world.esp}/tracking/",
            body,
            content_type="application/json",
            **_auth(SECRET),
            **headers,
        )
        assert response.status_code in (200, 400), (body, response.status_code)
    assert Message.objects.get(pk=message.pk).state == State.SENT


def test_a_mailgun_event_with_a_bad_signature_is_refused(client, patient, configure):
    world = WORLDS["mailgun"]
    configure(world)
    message = email(patient, world)
    body = json.loads(mailgun("hard_bounce", message)[0])
    body["signature"]["signature"] = "0" * 64
    response = client.post(
        "/webhooks/anymail/mailgun/tracking/",
        json.dumps(body),
        content_type="application/json",
        **_auth(SECRET),
    )
    assert response.status_code in (400, 403)
    assert Message.objects.get(pk=message.pk).state == State.SENT


def test_an_event_for_an_unknown_message_changes_nothing(client, patient, configure):
    world = WORLDS["postmark"]
    configure(world)
    message = email(patient, world)
    stranger = Message(pk=999_999, provider_id="not-ours")
    assert world.post(client, "hard_bounce", stranger).status_code == 200
    assert Message.objects.get(pk=message.pk).state == State.SENT
    assert not ProviderEvent.objects.exists()


def test_only_the_configured_esps_tracking_url_exists(client, patient, configure):
    configure(WORLDS["postmark"])
    message = email(patient, WORLDS["postmark"])
    assert WORLDS["mailgun"].post(client, "hard_bounce", message).status_code == 404
    assert (
        client.post("/webhooks/anymail/postmark/inbound/", "{}", content_type="application/json").status_code
        == 404
    )


def test_with_email_off_there_is_no_tracking_url(client, patient, settings):
    settings.EMAIL_ENABLED = False
    message = email(patient, WORLDS["postmark"])
    assert WORLDS["postmark"].post(client, "hard_bounce", message).status_code == 404
