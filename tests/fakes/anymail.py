"""What anymail's test backend (the email fake, ``anymail.backends.test``) records on each message it sends.

anymail ships no type information and sets these attributes at send time, so they are read here, once."""

from __future__ import annotations

from typing import Any

from django.core.mail import EmailMessage


def sent_params(message: EmailMessage) -> dict[str, Any]:
    """The payload the test backend would have posted to the ESP (``metadata``, ``tags``, …)."""
    params: dict[str, Any] = message.anymail_test_params  # type: ignore[attr-defined]  # set by anymail
    return params


def sent_message_id(message: EmailMessage) -> str:
    """The ESP's message id anymail reports for the sent message (``anymail_status.message_id``)."""
    return str(message.anymail_status.message_id)  # type: ignore[attr-defined]  # set by anymail
