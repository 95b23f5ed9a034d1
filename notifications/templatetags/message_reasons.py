"""``{{ message|channel_reason }}``: why a message was not delivered, in the words of its own channel (U1)."""

from __future__ import annotations

from django import template

from notifications.models import Message
from notifications.selectors import undeliverable_reason

register = template.Library()


@register.filter
def channel_reason(message: Message) -> str:
    return undeliverable_reason(message)
