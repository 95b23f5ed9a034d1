from __future__ import annotations

import logging

from anymail.exceptions import AnymailError, AnymailRecipientsRefused
from anymail.message import AnymailMessage
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from notifications.channels.base import Channel, ChannelError
from notifications.models import Message, Reason

logger = logging.getLogger(__name__)


class EmailChannel(Channel):
    """Email through Django's mail API; the backend (anymail's ESP, console, test) comes from settings."""

    name = "email"

    def send(self, message: Message) -> str:
        if not settings.EMAIL_ENABLED:
            logger.info("email (not sent: no ESP configured) message=%s", message.pk)
            return f"log-{message.pk}"
        email = AnymailMessage(
            subject=message.subject,
            body=message.body,
            from_email=message.organization.email_from or settings.DEFAULT_FROM_EMAIL,
            to=[message.destination],
            metadata={"message_id": str(message.pk)},
            tags=[f"{message.kind}"],
        )
        try:
            email.send()
        except AnymailRecipientsRefused as exc:
            raise ChannelError(str(exc), permanent=True, reason=Reason.REJECTED, undeliverable=True) from exc
        except AnymailError as exc:
            # Network errors and 5xx from the ESP: try again later.
            raise ChannelError(str(exc), permanent=False) from exc
        except ImproperlyConfigured as exc:
            # Start-up refuses an ESP without its credentials (dunning_project/email_config.py); should a
            # setting still be missing, the message is held for another try, never left in `sending`.
            logger.error("email is not configured: %s", exc)
            raise ChannelError(f"email is not configured: {exc}", permanent=False) from exc
        status = getattr(email, "anymail_status", None)
        provider_id = getattr(status, "message_id", None)
        return str(provider_id) if provider_id is not None else f"email-{message.pk}"
