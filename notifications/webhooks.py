"""Provider webhooks (N2, N3, T3): signed, idempotent, and silent about what they do not know."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import Any

from anymail.exceptions import AnymailError, AnymailWebhookValidationFailure
from anymail.signals import AnymailTrackingEvent, tracking
from django.conf import settings
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from notifications.delivery import sms_status_apply
from notifications.email_events import email_event_apply
from notifications.inbound import inbound_sms_apply
from notifications.models import Channel, Message
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


# N3, T3: the configured ESP's tracking webhook, and no other: anymail.urls would mount every ESP's views
# (inbound ones too), and an ESP that is not configured answers 500 from its view's start-up checks.
TRACKING_VIEWS = {
    "amazon_ses": "anymail.webhooks.amazon_ses.AmazonSESTrackingWebhookView",
    "brevo": "anymail.webhooks.brevo.BrevoTrackingWebhookView",
    "mailersend": "anymail.webhooks.mailersend.MailerSendTrackingWebhookView",
    "mailgun": "anymail.webhooks.mailgun.MailgunTrackingWebhookView",
    "mailjet": "anymail.webhooks.mailjet.MailjetTrackingWebhookView",
    "mailtrap": "anymail.webhooks.mailtrap.MailtrapTrackingWebhookView",
    "mandrill": "anymail.webhooks.mandrill.MandrillCombinedWebhookView",
    "postal": "anymail.webhooks.postal.PostalTrackingWebhookView",
    "postmark": "anymail.webhooks.postmark.PostmarkTrackingWebhookView",
    "resend": "anymail.webhooks.resend.ResendTrackingWebhookView",
    "sendgrid": "anymail.webhooks.sendgrid.SendGridTrackingWebhookView",
    "sparkpost": "anymail.webhooks.sparkpost.SparkPostTrackingWebhookView",
    "unisender_go": "anymail.webhooks.unisender_go.UnisenderGoTrackingWebhookView",
}
# What a body anymail cannot read raises (bad JSON, missing fields, an SNS body that is not one).
_MALFORMED = (ValueError, KeyError, TypeError, AttributeError, IndexError, AnymailError)


@cache
def _tracking_view(esp: str) -> Callable[..., HttpResponse]:
    """anymail's view for ``esp``, with a body it cannot parse answered 400 (not 500, which the ESP
    would retry for days). Basic auth and signatures are checked first, as anymail does."""
    base: type[Any] = import_string(TRACKING_VIEWS[esp])

    class Tracking(base):
        def run_validators(self, request: HttpRequest) -> None:
            try:
                super().run_validators(request)
            except AnymailWebhookValidationFailure:
                raise
            except _MALFORMED as exc:
                raise AnymailWebhookValidationFailure(f"malformed {self.esp_name} webhook: {exc}") from exc

        def parse_events(self, request: HttpRequest) -> list[Any]:
            try:
                return list(super().parse_events(request))
            except _MALFORMED as exc:
                raise AnymailWebhookValidationFailure(f"malformed {self.esp_name} webhook: {exc}") from exc

    Tracking.__name__ = base.__name__
    view: Callable[..., HttpResponse] = Tracking.as_view()
    return view


@csrf_exempt
def email_tracking(request: HttpRequest, esp: str) -> HttpResponse:
    """``/webhooks/anymail/<esp>/tracking/``: only the configured ESP's, and only with its secret set."""
    if not settings.EMAIL_ENABLED or esp != settings.ANYMAIL_ESP or esp not in TRACKING_VIEWS:
        raise Http404("no such webhook")
    if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        # T3: never open. Production refuses to start without it; elsewhere the webhook refuses to work.
        return HttpResponseForbidden("ANYMAIL_WEBHOOK_SECRET is not set")
    return _tracking_view(esp)(request)


@receiver(tracking)
def on_email_tracking(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    """N3: anymail authenticated the webhook and parsed the event; ``email_events`` applies it."""
    email_event_apply(esp_name=esp_name, event=event)
