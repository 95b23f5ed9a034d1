"""Inbound SMS keywords (N2, K4, T3) through the signed incoming-message webhook.

Each request is the fake's form in the shape Twilio documents for the incoming-message webhook
(https://www.twilio.com/docs/messaging/guides/webhook-request: MessageSid, SmsSid, SmsMessageSid, AccountSid,
From, To, Body, NumMedia, NumSegments, SmsStatus=received, ApiVersion, From*/To* geography; OptOutType only
from a Messaging Service with Advanced Opt-Out, https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out),
signed with the auth token as Twilio signs it (X-Twilio-Signature). The answer is the TwiML Twilio acts on:
with ``TWILIO_ADVANCED_OPT_OUT`` on, Twilio sends its own confirmation and we answer with an empty
<Response/>; off, our answer carries exactly one <Message>."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifications.models import Channel, Kind, Message, OptOut, OptOutEvent, ProviderEvent, State
from tests.concurrency import in_threads
from tests.factories import GuarantorFactory, OrganizationFactory
from tests.fakes.twilio_server import FakeTwilio

pytestmark = pytest.mark.django_db

INBOUND = "/webhooks/twilio/inbound/"
SENDER = "+18015550000"  # the practice's own Twilio number
PATIENT = "+18015550100"
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def one_message(text: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{text}</Message></Response>'


STOP_REPLY = one_message(
    "Smile Dental: You are unsubscribed and will get no more texts from us. Reply START to resubscribe."
)
START_REPLY = one_message(
    "Smile Dental: You are subscribed to our texts again. Reply HELP for help, STOP to opt out."
)
# The practice's number as a person dials it, not as it is stored (issue 12).
HELP_REPLY = one_message("Smile Dental: billing questions? Call (801) 555-0199. Reply STOP to opt out.")


@pytest.fixture
def twilio(settings) -> Iterator[FakeTwilio]:
    # No server needed: the fake only builds and signs Twilio's form here.
    fake = FakeTwilio()
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = fake.account_sid, fake.auth_token
    settings.PUBLIC_BASE_URL = "https://billing.example.org"
    yield fake


@pytest.fixture(params=[True, False], ids=["twilio-replies", "we-reply"])
def advanced_opt_out(request, settings) -> bool:
    settings.TWILIO_ADVANCED_OPT_OUT = request.param
    return request.param


@pytest.fixture
def org():
    return OrganizationFactory.create(
        slug="smile", name="Smile Dental", phone="+18015550199", twilio_from_number=SENDER
    )


@pytest.fixture
def patient(org):
    return GuarantorFactory.create(organization=org, mobile_phone=PATIENT)


def inbound(client, twilio: FakeTwilio, body: str, *, auth_token: str | None = None, **kw):
    params = twilio.inbound_params(from_number=kw.pop("from_number", PATIENT), to=SENDER, body=body, **kw)
    signature = twilio.sign("https://billing.example.org" + INBOUND, params, auth_token=auth_token)
    return client.post(INBOUND, params, HTTP_X_TWILIO_SIGNATURE=signature)


def answer(response) -> str:
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    return response.content.decode()


def opt_out() -> OptOut:
    return OptOut.objects.get(channel=Channel.SMS, address=PATIENT)


@pytest.mark.parametrize(
    "body",
    ["STOP", "stop", " Stop ", "STOPALL", "unsubscribe", "cancel", "END", "quit", "REVOKE", "OPTOUT", "optout",
     "OPT OUT", "opt out", "Opt  Out"],
)  # fmt: skip
def test_every_stop_keyword_opts_out_and_gets_exactly_one_reply(
    client, twilio, patient, advanced_opt_out, body
):
    pending = Message.objects.create(organization=patient.organization, patient=patient, channel=Channel.SMS,
                                     kind=Kind.REQUEST, body="x", destination=PATIENT)  # fmt: skip

    reply = answer(inbound(client, twilio, body))

    # Twilio confirms only its own keywords; "OPT OUT" (the FCC's, with a space) is ours to confirm.
    twilio_confirmed = advanced_opt_out and " ".join(body.upper().split()) != "OPT OUT"
    assert reply == (EMPTY if twilio_confirmed else STOP_REPLY)
    assert (opt_out().active, opt_out().source, opt_out().keyword) == (
        True,
        "sms_keyword",
        " ".join(body.upper().split()),
    )
    assert OptOutEvent.objects.get().at is not None
    assert Message.objects.get(pk=pending.pk).state == State.CANCELLED


@pytest.mark.parametrize("body", ["START", "unstop", "Yes"])
def test_start_keywords_opt_back_in_with_one_reply(client, twilio, patient, advanced_opt_out, body):
    answer(inbound(client, twilio, "STOP"))

    reply = answer(inbound(client, twilio, body))

    assert reply == (EMPTY if advanced_opt_out else START_REPLY)
    assert opt_out().active is False
    assert list(OptOutEvent.objects.order_by("pk").values_list("active", flat=True)) == [True, False]


@pytest.mark.parametrize("body", ["HELP", "help", "Info"])
def test_help_gets_one_reply_with_the_practice_name_and_phone_and_changes_nothing(
    client, twilio, patient, advanced_opt_out, body
):
    reply = answer(inbound(client, twilio, body))

    assert reply == (EMPTY if advanced_opt_out else HELP_REPLY)
    assert not OptOut.objects.exists()


def test_advanced_opt_out_type_is_honoured_for_a_keyword_outside_our_list(client, twilio, patient, settings):
    settings.TWILIO_ADVANCED_OPT_OUT = True

    assert answer(inbound(client, twilio, "ARRET", opt_out_type="STOP")) == EMPTY

    assert (opt_out().active, opt_out().keyword) == (True, "ARRET")


@pytest.mark.parametrize("body", ["stop please", "STOP IT", "please stop"])
def test_a_stop_that_is_not_the_whole_keyword_opts_out_as_a_phrase_and_we_confirm_it(
    client, twilio, patient, advanced_opt_out, body
):
    """K4: Twilio handles only the exact keyword, so it neither blocks nor confirms these; we do both."""
    assert answer(inbound(client, twilio, body)) == STOP_REPLY
    assert (opt_out().active, opt_out().source) == (True, "sms_phrase")


def test_a_question_changes_nothing_and_gets_no_reply(client, twilio, patient, advanced_opt_out):
    assert answer(inbound(client, twilio, "who is this?")) == EMPTY
    assert not OptOut.objects.exists()


def test_a_retried_inbound_stop_records_one_opt_out_and_answers_the_same(
    client, twilio, patient, advanced_opt_out
):
    """Twilio retries a webhook it got no answer to, with the same MessageSid: the first answer never reached
    it, so the retry gets the same TwiML (one confirmation in all) and nothing is recorded twice."""
    sid = "SM" + "7" * 32

    first = answer(inbound(client, twilio, "STOP", message_sid=sid))
    second = answer(inbound(client, twilio, "STOP", message_sid=sid))

    assert first == second == (EMPTY if advanced_opt_out else STOP_REPLY)
    assert OptOutEvent.objects.count() == 1
    assert ProviderEvent.objects.filter(event_id=sid).count() == 1


def test_a_retried_start_after_a_new_stop_does_not_opt_back_in(client, twilio, patient, settings):
    settings.TWILIO_ADVANCED_OPT_OUT = True
    answer(inbound(client, twilio, "START", message_sid="SM" + "1" * 32))
    answer(inbound(client, twilio, "STOP", message_sid="SM" + "2" * 32))

    answer(inbound(client, twilio, "START", message_sid="SM" + "1" * 32))  # a late retry of the first

    assert opt_out().active is True
    assert OptOutEvent.objects.count() == 2


def test_an_unsigned_or_wrongly_signed_inbound_is_403_and_changes_nothing(client, twilio, patient):
    params = twilio.inbound_params(from_number=PATIENT, to=SENDER, body="STOP")

    assert client.post(INBOUND, params).status_code == 403
    assert inbound(client, twilio, "STOP", auth_token="not-the-token").status_code == 403
    assert not OptOut.objects.exists()


def test_with_a_shared_sender_stop_reaches_every_practice_that_texted_the_number_and_names_the_latest(
    client, twilio, settings
):
    settings.TWILIO_ADVANCED_OPT_OUT = False
    first, latest = (
        OrganizationFactory.create(name="First Dental"),
        OrganizationFactory.create(name="Latest Ortho"),
    )
    for organization in (first, latest):
        patient = GuarantorFactory.create(organization=organization, mobile_phone=PATIENT)
        Message.objects.create(organization=organization, patient=patient, channel=Channel.SMS, kind=Kind.REQUEST,
                               body="x", destination=PATIENT, state=State.SENT)  # fmt: skip

    reply = answer(inbound(client, twilio, "STOP"))

    assert reply == one_message(
        "Latest Ortho: You are unsubscribed and will get no more texts from us. Reply START to resubscribe."
    )
    assert set(OptOut.objects.filter(active=True).values_list("organization__name", flat=True)) == {
        "First Dental",
        "Latest Ortho",
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_inbound_at_once_record_one_opt_out(twilio, settings):
    """The unique (provider, event_id) row decides between two simultaneous deliveries on PostgreSQL."""
    from django.test import Client

    settings.TWILIO_ADVANCED_OPT_OUT = True
    OrganizationFactory.create(slug="smile", name="Smile Dental", twilio_from_number=SENDER)
    sid = "SM" + "9" * 32

    results = in_threads(*[lambda: inbound(Client(), twilio, "STOP", message_sid=sid).status_code] * 2)

    assert results == [200, 200]
    assert OptOutEvent.objects.count() == 1
    assert OptOut.objects.get(address=PATIENT).active is True


@pytest.mark.parametrize(
    ("raw", "printed"), [(None, "True"), ("false", "False"), ("0", "False"), ("TRUE", "True"), ("ture", None)]
)
def test_the_setting_is_a_strict_boolean_that_defaults_to_twilio_replying(raw, printed):
    env = {k: v for k, v in os.environ.items() if k != "TWILIO_ADVANCED_OPT_OUT"}
    if raw is not None:
        env["TWILIO_ADVANCED_OPT_OUT"] = raw
    code = "import django; django.setup(); from django.conf import settings; print(settings.TWILIO_ADVANCED_OPT_OUT)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
        env={**env, "DJANGO_SETTINGS_MODULE": "dunning_project.settings.local", "VAR_DIR": "/tmp/dunning-settings-test"},
        timeout=60,
    )  # fmt: skip
    if printed is None:
        assert result.returncode != 0
        assert "TWILIO_ADVANCED_OPT_OUT must be 'true' or 'false'" in result.stderr
    else:
        assert (result.returncode, result.stdout.strip()) == (0, printed)
