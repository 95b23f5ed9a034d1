"""Provider webhooks (N2, N3, T3): signed, idempotent, and silent about what they do not know."""

from __future__ import annotations

import logging
from typing import Any

from anymail.signals import AnymailTrackingEvent, tracking
from django.conf import settings
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from notifications.delivery import sms_status_apply
from notifications.models import Channel, Message, OptOutSource, Reason, State
from notifications.optouts import opt_out_set
from notifications.outbox import message_transition
from notifications.providers import twilio
from practices.models import Organization, Patient

logger = logging.getLogger(__name__)

# N2: the whole message, any case.
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPT OUT", "OPTOUT"}
)
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})


def _signed_url(request: HttpRequest) -> str:
    # Twilio signs the public URL it called; behind a proxy that is PUBLIC_BASE_URL, not the inner host.
    return settings.PUBLIC_BASE_URL + request.get_full_path()


def _verified(request: HttpRequest) -> bool:
    return twilio.validate_signature(
        url=_signed_url(request), params=request.POST, signature=request.headers.get("X-Twilio-Signature", "")
    )


@csrf_exempt
@require_POST
def twilio_status(request: HttpRequest, message_id: int) -> HttpResponse:
    """Twilio's status callback for one message. Unknown ids or SIDs answer 200 and change nothing."""
    if not _verified(request):
        return HttpResponseForbidden("bad signature")
    sid = request.POST.get("MessageSid", "")
    message = (
        Message.objects.select_related("organization").filter(pk=message_id, channel=Channel.SMS).first()
    )
    if message is None or not sid or (message.provider_id and message.provider_id != sid):
        return HttpResponse(status=200)
    if not message.provider_id:
        # The callback can beat our own write of the SID after the provider accepted the message.
        Message.objects.filter(pk=message.pk, provider_id="").update(provider_id=sid)
    sms_status_apply(
        message=message,
        status=request.POST.get("MessageStatus", ""),
        error_code=request.POST.get("ErrorCode", ""),
    )
    return HttpResponse(status=200)


def _keyword(body: str) -> str:
    return " ".join(body.strip().upper().split())


@csrf_exempt
@require_POST
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    """Inbound SMS: STOP-family opts out, START-family opts back in, HELP answers with the practice's name
    and phone. Twilio's Advanced Opt-Out sends `OptOutType`; the keyword list covers numbers without it."""
    if not _verified(request):
        return HttpResponseForbidden("bad signature")
    number = request.POST.get("From", "")
    keyword = _keyword(request.POST.get("Body", ""))
    opt_out_type = request.POST.get("OptOutType", "").upper()
    organizations = _organizations_for_sender(
        request.POST.get("To", ""), request.POST.get("MessagingServiceSid", ""), number
    )
    if opt_out_type == "STOP" or keyword in STOP_WORDS:
        for organization in organizations:
            opt_out_set(organization=organization, channel=Channel.SMS, address=number, active=True,
                        source=OptOutSource.SMS_KEYWORD, keyword=keyword[:20])  # fmt: skip
        return _twiml(twilio.empty_twiml())
    if opt_out_type == "START" or keyword in START_WORDS:
        for organization in organizations:
            opt_out_set(organization=organization, channel=Channel.SMS, address=number, active=False,
                        source=OptOutSource.SMS_KEYWORD, keyword=keyword[:20])  # fmt: skip
        return _twiml(twilio.empty_twiml())
    if opt_out_type == "HELP" or keyword in HELP_WORDS:
        if organizations:
            org = organizations[0]
            text = f"{org.name}: billing questions? Call {org.phone or 'the office'}. Reply STOP to opt out."
        else:
            text = "Billing messages. Reply STOP to opt out."
        return _twiml(twilio.message_twiml(text))
    return _twiml(twilio.empty_twiml())


def _organizations_for_sender(to: str, messaging_service_sid: str, number: str) -> list[Organization]:
    """The organizations this inbound message concerns: those owning the sender identity it was sent to,
    or, with a shared sender, those that have messaged this number or have a patient at it."""
    owners = list(
        Organization.objects.filter(twilio_messaging_service_sid=messaging_service_sid).exclude(
            twilio_messaging_service_sid=""
        )
    ) or list(Organization.objects.filter(twilio_from_number=to).exclude(twilio_from_number=""))
    if owners:
        return owners
    ids = set(
        Message.objects.filter(channel=Channel.SMS, destination=number).values_list(
            "organization_id", flat=True
        )
    )
    ids |= set(Patient.objects.filter(mobile_phone=number).values_list("organization_id", flat=True))
    return list(Organization.objects.filter(pk__in=ids).order_by("pk"))


def _twiml(body: str) -> HttpResponse:
    return HttpResponse(body, content_type="application/xml")


@receiver(tracking)
def on_email_tracking(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    """N3: bounces and rejections make the message undelivered; a complaint is an email opt-out.
    anymail authenticates the webhook with ANYMAIL_WEBHOOK_SECRET before this runs."""
    message_id = (event.metadata or {}).get("message_id", "")
    message = None
    if str(message_id).isdigit():
        message = (
            Message.objects.select_related("organization")
            .filter(pk=int(message_id), channel=Channel.EMAIL)
            .first()
        )
    if message is None and event.message_id:
        message = (
            Message.objects.select_related("organization")
            .filter(provider_id=event.message_id, channel=Channel.EMAIL)
            .first()
        )
    if message is None:
        return
    if event.event_type == "delivered":
        message_transition(message_id=message.pk, to=State.DELIVERED, delivered_at=event.timestamp)
    elif event.event_type in ("bounced", "rejected"):
        reason = Reason.BOUNCED if event.event_type == "bounced" else Reason.REJECTED
        message_transition(message_id=message.pk, to=State.UNDELIVERED, reason=reason,
                           error_message=(event.description or event.reject_reason or "")[:500])  # fmt: skip
    elif event.event_type in ("complained", "unsubscribed"):
        source = (
            OptOutSource.EMAIL_COMPLAINT
            if event.event_type == "complained"
            else OptOutSource.EMAIL_UNSUBSCRIBE
        )
        opt_out_set(organization=message.organization, channel=Channel.EMAIL, address=message.destination,
                    active=True, source=source)  # fmt: skip
