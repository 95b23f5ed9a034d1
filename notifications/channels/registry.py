from __future__ import annotations

from notifications.channels.base import Channel
from notifications.channels.email import EmailChannel
from notifications.channels.paper import PaperChannel
from notifications.channels.sms import SmsChannel

CHANNELS: dict[str, Channel] = {"sms": SmsChannel(), "email": EmailChannel(), "paper": PaperChannel()}


def channel_for(name: str) -> Channel:
    return CHANNELS[name]
