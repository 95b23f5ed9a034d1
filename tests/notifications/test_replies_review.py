"""K4 end to end: replies that are no keyword, through the signed incoming-message webhook, the review queue's
decisions, and the one confirmation text.

Requests are Twilio's incoming-message webhook form (https://www.twilio.com/docs/messaging/guides/webhook-request:
MessageSid, SmsSid, AccountSid, From, To, Body, NumMedia, NumSegments, SmsStatus=received, ApiVersion, geography),
signed as Twilio signs them (X-Twilio-Signature, https://www.twilio.com/docs/usage/webhooks/webhooks-security).
What the patient receives is read where it leaves: the TwiML answer Twilio acts on, and the Messages API
requests that reached the fake Twilio (tests/fakes/twilio_server.py, the real SDK at the network seam).
Twilio confirms only its own keywords (https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out), so a
phrase is ours to confirm whatever ``TWILIO_ADVANCED_OPT_OUT`` says.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifications.models import (
    Channel,
    Confirmation,
    InboundReview,
    Kind,
    Message,
    OptOut,
    OptOutEvent,
    ReviewState,
    State,
)
from notifications.providers.twilio import reset_client
from notifications.replies import ReviewError, inbound_review_decide, opt_out_confirmation_send
from practices.models import AuditEvent, Role
from tests.factories import GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.fakes.twilio_server import FAKE_FROM_NUMBER, FakeTwilio

pytestmark = pytest.mark.django_db

INBOUND = "/webhooks/twilio/inbound/"
SENDER = "+18015550000"
PATIENT = "+18015550100"
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'
EN_CONFIRMATION = (
    "Smile Dental: You are unsubscribed and will get no more texts from us. Reply START to resubscribe."
)
ES_CONFIRMATION = (
    "Smile Dental: Se ha dado de baja y no recibira mas mensajes de texto nuestros. "
    "Responda START para volver a suscribirse."
)


def one_message(text: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{text}</Message></Response>'


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


@pytest.fixture(params=[True, False], ids=["twilio-opt-out-on", "twilio-opt-out-off"])
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
    return GuarantorFactory.create(organization=org, mobile_phone=PATIENT, first_name="Ana", last_name="Diaz")


@pytest.fixture
def front_desk(org):
    return MembershipFactory.create(organization=org, role=Role.FRONT_DESK, user__username="desk").user


def inbound(client, twilio: FakeTwilio, body: str, **kw):
    params = twilio.inbound_params(from_number=PATIENT, to=SENDER, body=body, **kw)
    signature = twilio.sign("https://billing.example.org" + INBOUND, params)
    response = client.post(INBOUND, params, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    return response.content.decode()


def pending_text(patient) -> Message:
    return Message.objects.create(organization=patient.organization, patient=patient, channel=Channel.SMS,
                                  kind=Kind.REQUEST, body="x", destination=PATIENT)  # fmt: skip


@pytest.mark.parametrize(
    ("body", "confirmation"),
    [("Please stop texting me", EN_CONFIRMATION), ("wrong number", EN_CONFIRMATION),
     ("No me manden mensajes", ES_CONFIRMATION), ("número equivocado", ES_CONFIRMATION)],
)  # fmt: skip
def test_a_phrase_opts_out_at_once_and_our_answer_is_its_one_confirmation(
    client, twilio, patient, advanced_opt_out, body, confirmation
):
    waiting = pending_text(patient)

    answer = inbound(client, twilio, body)

    assert answer == one_message(
        confirmation
    )  # Twilio confirms no phrase, with or without its opt-out handling
    assert twilio.messages == []  # the confirmation is the reply, not a second message through the API
    opt_out = OptOut.objects.get(channel=Channel.SMS, address=PATIENT)
    assert (opt_out.active, opt_out.source) == (True, "sms_phrase")
    assert OptOutEvent.objects.get().text == body  # K3: the exact text
    assert Message.objects.get(pk=waiting.pk).state == State.CANCELLED
    review = InboundReview.objects.get()
    assert (review.state, review.confirmation, review.decided_by) == (ReviewState.OPTED_OUT, "in_reply", None)
    assert list(review.patients.all()) == [patient]


def test_a_retried_phrase_webhook_records_once_and_gives_the_same_single_answer(
    client, twilio, patient, settings
):
    """Twilio retries only a webhook it got no answer to: the retry's answer is the one confirmation."""
    settings.TWILIO_ADVANCED_OPT_OUT = True
    sid = "SM" + "5" * 32

    first = inbound(client, twilio, "please stop texting me", message_sid=sid)
    second = inbound(client, twilio, "please stop texting me", message_sid=sid)

    assert first == second == one_message(EN_CONFIRMATION)
    assert (OptOutEvent.objects.count(), InboundReview.objects.count(), twilio.messages) == (1, 1, [])


def test_a_phrase_from_a_number_already_opted_out_gets_no_second_confirmation(
    client, twilio, patient, settings
):
    settings.TWILIO_ADVANCED_OPT_OUT = False
    assert inbound(client, twilio, "STOP") == one_message(EN_CONFIRMATION)

    assert inbound(client, twilio, "I said stop texting me") == EMPTY

    assert InboundReview.objects.get().confirmation == Confirmation.NONE


@pytest.mark.parametrize("body", ["who is this?", "¿Quién es?", "is this a scam", "stop what?",
                                  "I want to stop the payment plan?"])  # fmt: skip
def test_a_reply_that_might_be_an_opt_out_waits_on_the_queue_and_changes_nothing(
    client, twilio, patient, advanced_opt_out, body
):
    waiting = pending_text(patient)

    assert inbound(client, twilio, body) == EMPTY

    review = InboundReview.objects.get()
    assert (review.state, review.text, review.number) == (ReviewState.OPEN, body, PATIENT)
    assert not OptOut.objects.exists()
    assert Message.objects.get(pk=waiting.pk).state == State.PENDING


@pytest.mark.parametrize("body", ["I can't stop by today, can I pay online?", "don't stop, I will pay friday",
                                  "Stop sign", "no, I paid already", "can you stop by"])  # fmt: skip
def test_an_ordinary_reply_changes_nothing_and_is_not_queued(client, twilio, patient, advanced_opt_out, body):
    assert inbound(client, twilio, body) == EMPTY
    assert not OptOut.objects.exists()
    assert not InboundReview.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        "x" * 5000,
        "please stop texting me\x00\x00",
        "🙏" * 1600 + " stop texting me",
        "\x00",
        "stop \ufffd me",
    ],
    ids=["5000-chars", "nul-bytes", "emoji", "only-nul", "replacement-char"],
)
def test_an_inbound_text_of_any_length_or_encoding_never_fails_the_webhook(
    client, twilio, patient, settings, body
):
    settings.TWILIO_ADVANCED_OPT_OUT = True

    answer = inbound(client, twilio, body)  # asserts 200 and TwiML

    assert answer in (EMPTY, one_message(EN_CONFIRMATION))
    for review in InboundReview.objects.all():
        assert "\x00" not in review.text


def test_undecodable_bytes_in_the_form_never_fail_the_webhook(client, twilio, patient, settings):
    """A body that is not UTF-8 (a lone surrogate's bytes): Django decodes the form with replacement."""
    settings.TWILIO_ADVANCED_OPT_OUT = True
    params = twilio.inbound_params(from_number=PATIENT, to=SENDER, body="stop texting me")
    signature = twilio.sign("https://billing.example.org" + INBOUND, params)
    raw = "&".join(f"{k}={v}" for k, v in params.items() if k != "Body").replace("+", "%2B")
    raw += "&Body=stop%20%ED%A0%80%20texting%20me%FF"

    response = client.post(INBOUND, raw, content_type="application/x-www-form-urlencoded",
                           HTTP_X_TWILIO_SIGNATURE=signature)  # fmt: skip

    assert response.status_code in (200, 403)  # the signature covers the bytes Twilio sent, never a 500


def test_a_stop_keyword_closes_the_numbers_open_items(client, twilio, patient, settings):
    settings.TWILIO_ADVANCED_OPT_OUT = True
    inbound(client, twilio, "who is this?")

    inbound(client, twilio, "STOP")

    assert InboundReview.objects.get().state == ReviewState.OPTED_OUT


def test_staff_opting_out_from_the_queue_sends_exactly_one_confirmation_through_twilio(
    client, twilio, patient, front_desk, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.TWILIO_ADVANCED_OPT_OUT = True
    queued: list[int] = []
    monkeypatch.setattr("notifications.tasks.send_opt_out_confirmation.delay", queued.append)
    inbound(client, twilio, "Quién es? no conozco este número")
    review = InboundReview.objects.get()
    waiting = pending_text(patient)

    with pytest.raises(ReviewError):
        inbound_review_decide(review=review, decision="maybe", user=front_desk)
    with django_capture_on_commit_callbacks(execute=True):  # queued once the decision commits
        inbound_review_decide(review=review, decision=ReviewState.OPTED_OUT, user=front_desk)
    with pytest.raises(ReviewError, match="Already decided"):
        inbound_review_decide(review=review, decision=ReviewState.OPTED_OUT, user=front_desk)
    for review_id in queued * 2:  # a redelivered task sends nothing twice
        opt_out_confirmation_send(review_id=review_id)

    assert [(m["To"], m["Body"]) for m in twilio.accepted()] == [(PATIENT, ES_CONFIRMATION)]
    review.refresh_from_db()
    assert (review.state, review.decided_by, review.confirmation) == (
        ReviewState.OPTED_OUT,
        front_desk,
        "sent",
    )
    assert review.confirmation_sid == twilio.accepted()[0]["sid"]
    event = OptOutEvent.objects.get()
    assert (event.source, event.actor, event.text) == ("staff", front_desk, review.text)
    assert Message.objects.get(pk=waiting.pk).state == State.CANCELLED
    audit = AuditEvent.objects.get(action="inbound_review.opted_out")
    assert (audit.actor, audit.object_id, audit.changes["confirmation"]) == (
        front_desk,
        str(review.pk),
        "pending",
    )


def test_not_an_opt_out_is_audited_and_sends_nothing(
    client, twilio, patient, front_desk, settings, monkeypatch
):
    settings.TWILIO_ADVANCED_OPT_OUT = False
    queued: list[int] = []
    monkeypatch.setattr("notifications.tasks.send_opt_out_confirmation.delay", queued.append)
    inbound(client, twilio, "who is this?")
    review = InboundReview.objects.get()

    inbound_review_decide(review=review, decision=ReviewState.DISMISSED, user=front_desk)

    assert (queued, twilio.messages, OptOut.objects.exists()) == ([], [], False)
    assert InboundReview.objects.get().state == ReviewState.DISMISSED
    assert AuditEvent.objects.filter(action="inbound_review.dismissed", actor=front_desk).count() == 1


def test_a_confirmation_twilio_refuses_is_failed_with_its_reason_and_not_retried(
    client, twilio, patient, front_desk, settings, monkeypatch
):
    monkeypatch.setattr("notifications.tasks.send_opt_out_confirmation.delay", lambda review_id: None)
    inbound(client, twilio, "who is this?")
    review = inbound_review_decide(review=InboundReview.objects.get(), decision=ReviewState.OPTED_OUT,
                                   user=front_desk)  # fmt: skip
    twilio.fail_next(status=400, code=21610, message="Attempt to send to unsubscribed recipient")

    assert opt_out_confirmation_send(review_id=review.pk) == "failed"
    assert opt_out_confirmation_send(review_id=review.pk) == "claimed elsewhere"

    review.refresh_from_db()
    assert review.confirmation_error.startswith("21610")
    assert len(twilio.messages) == 1


def test_the_queue_page_decides_by_plain_post_and_another_practices_reply_answers_404(
    client, twilio, patient, front_desk, settings, monkeypatch
):
    """T1, T2: the front desk of one practice decides its own replies only; the page lists what waits."""
    monkeypatch.setattr("notifications.tasks.send_opt_out_confirmation.delay", lambda review_id: None)
    inbound(client, twilio, "who is this?")
    review = InboundReview.objects.get()
    other = OrganizationFactory.create(slug="other")
    MembershipFactory.create(organization=other, role=Role.FRONT_DESK, user=front_desk)
    client.force_login(front_desk)

    page = client.get("/dashboard/replies/smile/")
    assert page.status_code == 200
    assert "who is this?" in page.content.decode()
    assert (
        client.post(f"/dashboard/replies/other/{review.pk}/decide/", {"decision": "dismissed"}).status_code
        == 404
    )
    stranger = MembershipFactory.create(
        organization=other, role=Role.FRONT_DESK, user__username="stranger"
    ).user
    client.force_login(stranger)
    assert client.get("/dashboard/replies/smile/").status_code == 404
    client.force_login(front_desk)

    response = client.post(f"/dashboard/replies/smile/{review.pk}/decide/", {"decision": "dismissed"})

    assert (response.status_code, response["Location"]) == (302, "/dashboard/replies/smile/")
    assert InboundReview.objects.get().state == ReviewState.DISMISSED
    assert "Nothing to review" in client.get("/dashboard/replies/smile/").content.decode()
