"""Inbound SMS (N2, K4): keywords set and clear the sender's SMS opt-out, other replies are read by the
phrase table (notifications/revocation.py); the answer is TwiML.

Who replies to STOP/START/HELP is a setting (``TWILIO_ADVANCED_OPT_OUT``): Twilio's own opt-out handling
(default true), which sends the confirmations and the HELP text itself, so we answer with empty TwiML; or us,
with exactly one message. Twilio confirms only what it recognised: its own keywords (``TWILIO_STOP_WORDS``) or
one it reports with ``OptOutType``. Anything else that opts out, a keyword of ours outside Twilio's list
("OPT OUT") or a phrase ("please stop texting me"), is confirmed by us in the answer, whatever the setting.
Either way the patient gets one confirmation, never two.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.models import Channel, Confirmation, InboundReview, Message, OptOutSource, ProviderEvent
from notifications.optouts import opt_out_set
from notifications.providers import twilio
from notifications.replies import confirmation_text, inbound_reviews_close, inbound_reviews_record
from notifications.revocation import Verdict, revocation_classify
from notifications.templating import format_phone
from practices.models import Organization, Patient

# N2: the whole message, any case, inner spaces collapsed ("opt  out" is OPT OUT).
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"}
)
# Twilio's default opt-out keywords (https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out): the
# ones it confirms itself. "OPT OUT" with a space is the FCC's (47 CFR 64.1200(a)(10)) and ours, not Twilio's.
TWILIO_STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})

STOP, START, HELP = "STOP", "START", "HELP"
# ProviderEvent.provider of inbound messages: the MessageSid of a retried webhook is found there.
INBOUND_EVENTS = "twilio-inbound"


def inbound_keyword(body: str) -> str:
    return " ".join(body.strip().upper().split())


def inbound_intent(*, body: str, opt_out_type: str = "") -> str:
    """STOP, START, HELP or '' for a text that is none of them. Twilio's Advanced Opt-Out sends
    ``OptOutType`` (it knows the service's own keywords, in any language); the lists cover the rest."""
    kind = opt_out_type.strip().upper()
    if kind in (STOP, START, HELP):
        return kind
    keyword = inbound_keyword(body)
    if keyword in STOP_WORDS:
        return STOP
    if keyword in START_WORDS:
        return START
    if keyword in HELP_WORDS:
        return HELP
    return ""


def organizations_for_sender(*, to: str, messaging_service_sid: str, from_number: str) -> list[Organization]:
    """The organizations an inbound message concerns: those owning the sender identity it was sent to
    (messaging service, else number), or, with a shared sender, those that have texted this number or have
    a patient at it."""
    owners = list(
        Organization.objects.filter(twilio_messaging_service_sid=messaging_service_sid).exclude(
            twilio_messaging_service_sid=""
        )
    ) or list(Organization.objects.filter(twilio_from_number=to).exclude(twilio_from_number=""))
    if owners:
        return owners
    ids = set(
        Message.objects.filter(channel=Channel.SMS, destination=from_number).values_list(
            "organization_id", flat=True
        )
    )
    ids |= set(Patient.objects.filter(mobile_phone=from_number).values_list("organization_id", flat=True))
    return list(Organization.objects.filter(pk__in=ids).order_by("pk"))


def inbound_sms_apply(
    *,
    to: str,
    messaging_service_sid: str,
    from_number: str,
    body: str,
    opt_out_type: str = "",
    message_sid: str = "",
    at: datetime | None = None,
) -> str:
    """Apply one inbound SMS and return the TwiML to answer Twilio with.

    STOP-family opts the sender's number out of SMS at every organization it concerns (recorded with time,
    source and keyword; pending and scheduled texts to it are cancelled), START-family opts it back in, HELP
    changes nothing. Any other text goes to the phrase table (K4): an opt-out phrase opts out like STOP, a
    reply that might be one waits on the review queue. A retried webhook (the same ``message_sid``) records
    nothing twice and gets the same answer: Twilio retries only when it had no answer, so the reply still
    goes out once."""
    moment = at or timezone.now()
    intent = inbound_intent(body=body, opt_out_type=opt_out_type)
    if not intent:
        return _reply_apply(to=to, messaging_service_sid=messaging_service_sid, from_number=from_number,
                            body=body, message_sid=message_sid, at=moment)  # fmt: skip
    organizations = organizations_for_sender(
        to=to, messaging_service_sid=messaging_service_sid, from_number=from_number
    )
    keyword = inbound_keyword(body)
    if intent in (STOP, START):
        _opt_out_record(
            organizations=organizations, number=from_number, active=intent == STOP,
            keyword=keyword[:20], message_sid=message_sid, at=moment, text=body,
        )  # fmt: skip
    if settings.TWILIO_ADVANCED_OPT_OUT and (intent != STOP or twilio_confirms(keyword, opt_out_type)):
        return twilio.empty_twiml()
    return twilio.message_twiml(_reply(intent, _named_organization(organizations, from_number)))


def twilio_confirms(keyword: str, opt_out_type: str) -> bool:
    """With Twilio's opt-out handling on, whether Twilio itself confirmed this STOP: it reported it
    (``OptOutType``) or it is one of Twilio's default keywords."""
    return opt_out_type.strip().upper() == STOP or keyword in TWILIO_STOP_WORDS


def _reply_apply(
    *, to: str, messaging_service_sid: str, from_number: str, body: str, message_sid: str, at: datetime
) -> str:
    """K4: a text that is no keyword. An opt-out phrase opts the number out and is confirmed in our answer
    (Twilio never confirms a phrase, so this holds whatever ``TWILIO_ADVANCED_OPT_OUT`` says) when the
    opt-out is new; a reply that might be one goes to the review queue, unanswered."""
    found = revocation_classify(body)
    if found.verdict == Verdict.NONE:
        return twilio.empty_twiml()
    organizations = organizations_for_sender(
        to=to, messaging_service_sid=messaging_service_sid, from_number=from_number
    )
    if not organizations:
        return twilio.empty_twiml()
    with transaction.atomic():
        if _first_delivery(message_sid, at):
            reviews = inbound_reviews_record(organizations=organizations, number=from_number, text=body,
                                             message_sid=message_sid, at=at, found=found)  # fmt: skip
        else:  # a retry: the answer the first delivery gave
            reviews = list(
                InboundReview.objects.filter(organization__in=organizations, message_sid=message_sid)
            )
    if not any(review.confirmation == Confirmation.IN_REPLY for review in reviews):
        return twilio.empty_twiml()
    named = _named_organization(organizations, from_number)
    return twilio.message_twiml(confirmation_text(organization=named, language=found.language))


def _first_delivery(message_sid: str, at: datetime) -> bool:
    """Whether this MessageSid is new (its ProviderEvent row written now); the unique row decides between
    two deliveries at once: the second waits for the first's commit, then finds it."""
    if not message_sid:
        return True
    try:
        with transaction.atomic():
            ProviderEvent.objects.create(provider=INBOUND_EVENTS, event_id=message_sid, received_at=at)
    except IntegrityError:
        return False
    return True


@transaction.atomic
def _opt_out_record(
    *,
    organizations: list[Organization],
    number: str,
    active: bool,
    keyword: str,
    message_sid: str,
    at: datetime,
    text: str = "",
) -> None:
    if not _first_delivery(message_sid, at):
        return  # a retry of a message already applied
    for organization in organizations:
        opt_out_set(organization=organization, channel=Channel.SMS, address=number, active=active,
                    source=OptOutSource.SMS_KEYWORD, keyword=keyword, at=at, text=text)  # fmt: skip
    if active:
        inbound_reviews_close(organizations=organizations, number=number, at=at)


def _named_organization(organizations: list[Organization], number: str) -> Organization | None:
    """The practice a reply names: the only one, or with a shared sender the one that texted this number
    last."""
    if len(organizations) <= 1:
        return organizations[0] if organizations else None
    latest = (
        Message.objects.filter(channel=Channel.SMS, destination=number, organization__in=organizations)
        .order_by("-created_at", "-pk")
        .values_list("organization_id", flat=True)
        .first()
    )
    return next((o for o in organizations if o.pk == latest), organizations[0])


def _reply(intent: str, organization: Organization | None) -> str:
    if intent == STOP:
        return confirmation_text(organization=organization, language="en")
    name = f"{organization.name}: " if organization is not None else ""
    if intent == START:
        return f"{name}You are subscribed to our texts again. Reply HELP for help, STOP to opt out."
    if organization is not None:
        phone = format_phone(organization.phone)
        return f"{organization.name}: billing questions? Call {phone}. Reply STOP to opt out."
    return "Billing messages. Reply STOP to opt out."
