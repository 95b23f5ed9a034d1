from __future__ import annotations

from notifications.channels.base import Channel
from notifications.models import Message


class PaperChannel(Channel):
    """Paper is never sent one by one: a pending paper message waits for the nightly batch (L1)."""

    name = "paper"

    def send(self, message: Message) -> str:
        raise RuntimeError("paper messages are sent by the nightly letter batch, not by the send task")
