"""One class per channel, one interface: ``send(message) -> provider id`` raising ``ChannelError``."""

from __future__ import annotations

from notifications.channels.base import Channel, ChannelError
from notifications.channels.registry import channel_for

__all__ = ["Channel", "ChannelError", "channel_for"]
