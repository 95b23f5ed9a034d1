from __future__ import annotations

import logging

from django.conf import settings
from django.urls import reverse

from notifications.channels.base import Channel, ChannelError
from notifications.models import Message
from notifications.providers import twilio

logger = logging.getLogger(__name__)


def status_callback_url(message: Message) -> str:
    return settings.PUBLIC_BASE_URL + reverse("webhooks:twilio-status", args=[message.pk])


class SmsChannel(Channel):
    name = "sms"

    def send(self, message: Message) -> str:
        if not settings.TWILIO_ENABLED:
            # No credentials: the embedded default. Log that it would have gone, without the body (T4).
            logger.info(
                "sms (not sent: Twilio not configured) message=%s to=…%s",
                message.pk,
                message.destination[-4:],
            )
            return f"log-{message.pk}"
        organization = message.organization
        try:
            sent = twilio.send_sms(
                to=message.destination,
                body=message.body,
                status_callback=status_callback_url(message),
                messaging_service_sid=organization.twilio_messaging_service_sid,
                from_number=organization.twilio_from_number,
            )
        except twilio.ProviderError as exc:
            # What the code means comes from the provider's one table (providers/twilio.py, N2).
            raise ChannelError(
                exc.message,
                permanent=exc.permanent,
                reason=exc.reason,
                code=str(exc.code or ""),
                undeliverable=exc.undeliverable,
                opted_out=exc.opted_out,
                maybe_sent=exc.maybe_sent,
            ) from exc
        return sent.sid
