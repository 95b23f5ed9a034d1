"""Delivery reports from providers (N2, N3), applied through the state machine so that retries and
out-of-order callbacks change nothing."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from notifications.channels.sms import REASON_BY_CODE
from notifications.models import Message, OptOutSource, Reason, State
from notifications.optouts import opt_out_set
from notifications.outbox import message_transition

# Twilio MessageStatus → our state. queued/accepted/sending are steps before `sent`.
TWILIO_STATES = {
    "queued": State.SENT,
    "accepted": State.SENT,
    "sending": State.SENT,
    "sent": State.SENT,
    "delivered": State.DELIVERED,
    "undelivered": State.UNDELIVERED,
    "failed": State.FAILED,
}


def sms_status_apply(
    *, message: Message, status: str, error_code: str = "", at: datetime | None = None
) -> bool:
    """Apply a Twilio status callback; True when the message changed state."""
    target = TWILIO_STATES.get(status)
    if target is None:
        return False
    moment = at or timezone.now()
    code = int(error_code) if error_code.isdigit() else 0
    if code == 21610:
        opt_out_set(
            organization=message.organization, channel=message.channel, address=message.destination, active=True,
            source=OptOutSource.PROVIDER_ERROR, at=moment,
        )  # fmt: skip
    fields: dict[str, object] = {}
    if target == State.DELIVERED:
        fields["delivered_at"] = moment
    if target in (State.UNDELIVERED, State.FAILED):
        fields.update(
            error_code=error_code[:20],
            reason=REASON_BY_CODE.get(
                code, Reason.PROVIDER_UNDELIVERED if target == State.UNDELIVERED else Reason.PROVIDER_FAILED
            ),
        )
        # Twilio reports number problems as `failed` too; they belong on the undeliverable list either way.
        if code in REASON_BY_CODE and code != 21610:
            target = State.UNDELIVERED
    if target == State.SENT:
        fields["sent_at"] = moment
    return message_transition(message_id=message.pk, to=target, **fields)
