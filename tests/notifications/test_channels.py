"""Channels: SMS through the real Twilio SDK (faked at the transport), email through anymail, log-only mode."""

from __future__ import annotations

import pytest
from anymail.exceptions import AnymailAPIError
from django.core import mail

from notifications.channels import ChannelError, channel_for
from notifications.models import Channel, Kind, Message, Reason
from notifications.providers import twilio
from tests.factories import GuarantorFactory, OrganizationFactory
from tests.fakes.anymail import sent_message_id, sent_params
from tests.fakes.twilio_server import FAKE_ACCOUNT_SID, FAKE_AUTH_TOKEN, FakeTwilio

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_twilio(settings):
    with FakeTwilio() as fake:
        settings.TWILIO_ACCOUNT_SID = FAKE_ACCOUNT_SID
        settings.TWILIO_AUTH_TOKEN = FAKE_AUTH_TOKEN
        settings.TWILIO_API_BASE_URL = fake.base_url
        settings.TWILIO_MESSAGING_SERVICE_SID = "MG" + "1" * 32
        settings.TWILIO_ENABLED = True
        settings.PUBLIC_BASE_URL = "https://billing.example.org"
        twilio.reset_client()
        yield fake
        twilio.reset_client()


def _message(channel: str, destination: str, **kw) -> Message:
    patient = GuarantorFactory.create(
        organization=OrganizationFactory.create(email_from="billing@smile.example")
    )
    return Message.objects.create(organization=patient.organization, patient=patient, channel=channel,
                                  kind=Kind.REQUEST, subject="Your balance", body="Hi. Reply STOP to opt out.",
                                  destination=destination, **kw)  # fmt: skip


def test_sms_goes_through_the_sdk_with_a_status_callback(fake_twilio):
    message = _message(Channel.SMS, "+18015550100")
    sid = channel_for("sms").send(message)
    [sent] = fake_twilio.accepted()
    assert sid == sent["sid"]
    assert sent["To"] == "+18015550100"
    assert sent["MessagingServiceSid"] == "MG" + "1" * 32
    assert sent["StatusCallback"] == f"https://billing.example.org/webhooks/twilio/status/{message.pk}/"


def test_an_organizations_own_sender_number_is_used(fake_twilio, settings):
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    message = _message(Channel.SMS, "+18015550100")
    message.organization.twilio_from_number = "+18015559999"
    channel_for("sms").send(message)
    assert fake_twilio.accepted()[0]["From"] == "+18015559999"


@pytest.mark.parametrize(
    ("number", "code", "reason", "permanent", "opted_out"),
    [("+15005550009", "21614", Reason.LANDLINE, True, False), ("+15005550001", "21211", Reason.INVALID_NUMBER, True, False),
     ("+15005550004", "21610", Reason.OPTED_OUT, True, True)],
)  # fmt: skip
def test_sms_provider_errors_become_channel_errors(fake_twilio, number, code, reason, permanent, opted_out):
    with pytest.raises(ChannelError) as exc:
        channel_for("sms").send(_message(Channel.SMS, number))
    assert (exc.value.code, exc.value.reason, exc.value.permanent, exc.value.opted_out) == (
        code,
        reason,
        permanent,
        opted_out,
    )


def test_a_provider_outage_is_transient(fake_twilio):
    fake_twilio.fail_next(status=503)
    with pytest.raises(ChannelError) as exc:
        channel_for("sms").send(_message(Channel.SMS, "+18015550100"))
    assert exc.value.permanent is False


def test_without_twilio_credentials_sms_is_logged_not_sent(settings, caplog):
    settings.TWILIO_ENABLED = False
    message = _message(Channel.SMS, "+18015550100")
    with caplog.at_level("INFO"):
        assert channel_for("sms").send(message) == f"log-{message.pk}"
    assert "Reply STOP" not in caplog.text  # the body (possibly PHI) is not logged


@pytest.fixture
def anymail_backend(settings):
    # pytest-django forces locmem; anymail's test backend records the ESP parameters (ECOSYSTEM.md §2).
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.EMAIL_ENABLED = True


def test_email_goes_through_anymail_with_our_id_in_the_metadata(anymail_backend):
    message = _message(Channel.EMAIL, "ana@example.com")
    provider_id = channel_for("email").send(message)
    [sent] = mail.outbox
    assert sent.to == ["ana@example.com"]
    assert sent.from_email == "billing@smile.example"
    assert sent_params(sent)["metadata"] == {"message_id": str(message.pk)}
    assert provider_id == sent_message_id(sent)


def test_an_esp_error_is_transient(anymail_backend, monkeypatch):
    def boom(self, *args, **kwargs):
        raise AnymailAPIError("ESP down")

    monkeypatch.setattr("anymail.backends.test.EmailBackend.send_messages", boom)
    with pytest.raises(ChannelError) as exc:
        channel_for("email").send(_message(Channel.EMAIL, "ana@example.com"))
    assert exc.value.permanent is False


def test_paper_is_never_sent_one_by_one():
    with pytest.raises(RuntimeError):
        channel_for("paper").send(_message(Channel.PAPER, ""))
