"""Delivery reports from providers (N2, N3), applied through the state machine so that retries and
out-of-order callbacks change nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from notifications.models import PROVIDER_OPT_OUT_SOURCES, Message, OptOutSource, Reason, State
from notifications.optouts import opt_out_set
from notifications.outbox import message_transition
from notifications.providers import twilio

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


def sms_failure_outcome(*, state: str, error_code: str) -> tuple[str, str]:
    """(state, reason) a ``failed`` or ``undelivered`` callback (``state``) with this ErrorCode ends in.

    The code is read in the provider's one table (``providers.twilio.ERROR_CLASSES``): a number problem ends
    ``undelivered`` (the undeliverable list, U1) whether Twilio said ``failed`` or ``undelivered``; 21610
    ends ``cancelled``/``opted_out``; any other known code ``failed`` with its reason (30007:
    ``carrier_filtered``). An unknown code keeps Twilio's state, with the generic reason."""
    error_class = twilio.ERROR_CLASSES.get(int(error_code)) if error_code.isdigit() else None
    if error_class is None:
        return state, Reason.PROVIDER_UNDELIVERED if state == State.UNDELIVERED else Reason.PROVIDER_FAILED
    if error_class.opted_out:
        return State.CANCELLED, error_class.reason
    return (State.UNDELIVERED if error_class.undeliverable else State.FAILED), error_class.reason


def sms_status_apply(
    *, message: Message, status: str, error_code: str = "", at: datetime | None = None
) -> bool:
    """Apply a Twilio status callback; True when the message changed state (``sms_failure_outcome`` for
    failures). 21610 also records an SMS opt-out (source ``provider_error``), once however often Twilio
    retries the callback."""
    target: str | None = TWILIO_STATES.get(status)
    if target is None:
        return False
    moment = at or timezone.now()
    fields: dict[str, Any] = {}
    if target == State.DELIVERED:
        fields["delivered_at"] = moment
    elif target == State.SENT:
        fields["sent_at"] = moment
    else:
        target, fields["reason"] = sms_failure_outcome(state=target, error_code=error_code)
        fields["error_code"] = error_code[:20]
        if target == State.CANCELLED:
            return _provider_opt_out(message=message, at=moment, error_code=error_code[:20])
    return message_transition(message_id=message.pk, to=target, **fields)


@transaction.atomic
def _provider_opt_out(*, message: Message, at: datetime, error_code: str) -> bool:
    # The cancel decides: a retried callback finds the message cancelled and records no second opt-out.
    cancelled = Message.objects.filter(pk=message.pk, state__in=PROVIDER_OPT_OUT_SOURCES).update(
        state=State.CANCELLED, reason=Reason.OPTED_OUT, error_code=error_code, updated_at=at
    )
    if cancelled:
        opt_out_set(
            organization=message.organization, channel=message.channel, address=message.destination, active=True,
            source=OptOutSource.PROVIDER_ERROR, at=at, text=f"Twilio error {error_code} on message {message.provider_id}",
        )  # fmt: skip
    return cancelled == 1
