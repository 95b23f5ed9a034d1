from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notifications.models import Message


class ChannelError(Exception):
    """A send that did not go through.

    ``permanent``: do not try this message again. ``reason`` is a ``notifications.models.Reason`` value.
    ``undeliverable``: the destination is the problem (the message joins the undeliverable list, U1).
    ``opted_out``: the provider says the recipient opted out (21610). ``maybe_sent``: the provider may have
    accepted it (a timeout after the request went out), so it must not be sent again.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        reason: str = "",
        code: str = "",
        undeliverable: bool = False,
        opted_out: bool = False,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.reason = reason
        self.code = code
        self.undeliverable = undeliverable
        self.opted_out = opted_out
        self.maybe_sent = maybe_sent


class Channel:
    name: str = ""

    def send(self, message: Message) -> str:
        """Hand ``message`` to the provider and return the provider's id for it."""
        raise NotImplementedError
