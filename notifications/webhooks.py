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
from notifications.inbound import inbound_sms_apply
from notifications.models import Channel, Message, OptOutSource, Reason, State
from notifications.optouts import opt_out_set
from notifications.outbox import message_transition
from notifications.providers import twilio

logger = logging.getLogger(__name__)


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


@csrf_exempt
@require_POST
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    """Inbound SMS (N2): STOP/START/HELP through ``inbound_sms_apply``, answered with its TwiML."""
    if not _verified(request):
        return HttpResponseForbidden("bad signature")
    twiml = inbound_sms_apply(
        to=request.POST.get("To", ""),
        messaging_service_sid=request.POST.get("MessagingServiceSid", ""),
        from_number=request.POST.get("From", ""),
        body=request.POST.get("Body", ""),
        opt_out_type=request.POST.get("OptOutType", ""),
        message_sid=request.POST.get("MessageSid", ""),
    )
    return HttpResponse(twiml, content_type="application/xml")


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
