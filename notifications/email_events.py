"""Email tracking events (N3): what an ESP's delivery report, bounce or complaint does to a message.

anymail turns each ESP's webhook into ``AnymailTrackingEvent``s with one vocabulary (``event_type``,
``reject_reason``); ``email_event_apply`` maps them here, the one place that knows:

- ``delivered`` → ``delivered``.
- ``bounced``, ``rejected``, ``failed`` (anymail could not send it) → ``undelivered``, on the undeliverable
  list (U1). A hard bounce that arrives after ``delivered`` still moves it to ``undelivered``: the one move
  back N1 allows, and only for email. A soft bounce after delivery changes nothing.
- Complaints, unsubscribes and an ESP's "dropped: unsubscribed" (a send suppressed because the address
  unsubscribed or complained) are an email opt-out, never a bad address: the opt-out is recorded and a
  dropped message ends ``cancelled``/``opted_out``, off the list.
- ``subscribed`` (a resubscribe at the ESP) clears an opt-out that came from the ESP, recorded as
  ``email_resubscribe``; an opt-out a person recorded stays.
- A retried event (same ESP event, or the same report again) changes nothing and records nothing twice:
  each applied event leaves a ``ProviderEvent`` row, written in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.models import Channel, Message, OptOut, OptOutSource, ProviderEvent, Reason, State
from notifications.optouts import opt_out_set
from notifications.outbox import message_transition

# What each event did (returned for logs and tests).
APPLIED, DUPLICATE, IGNORED, UNKNOWN_MESSAGE = "applied", "duplicate", "ignored", "unknown_message"

OPT_OUT_EVENTS = frozenset({"complained", "unsubscribed"})
FAILURE_EVENTS = frozenset({"bounced", "rejected", "failed"})
ACTED_ON = frozenset({"delivered", "subscribed"}) | OPT_OUT_EVENTS | FAILURE_EVENTS
# anymail reject_reason values that say "the address unsubscribed / complained", not "the address is bad".
OPT_OUT_REJECT_REASONS = frozenset({"unsubscribed", "spam"})
# The ESP's own record where anymail's vocabulary is not enough (each row: ESP, field path, values):
# bounces anymail calls ``bounced`` that the ESP calls temporary, drops for an unsubscribed or complaining
# address that anymail files under another reason, and "subscribed" events that are not the patient's act.
SOFT_BOUNCES: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    # https://postmarkapp.com/developer/api/bounce-api#bounce-types: SoftBounce is "Unable to temporarily
    # deliver this email message"
    "Postmark": (("Type",), frozenset({"SoftBounce"})),
    # https://developers.brevo.com/docs/transactional-webhooks: soft_bounce
    "Brevo": (("event",), frozenset({"soft_bounce"})),
    # https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html#bounce-types: Transient
    "Amazon SES": (("bounce", "bounceType"), frozenset({"Transient"})),
    # https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event#bounce: type "blocked"
    "SendGrid": (("type",), frozenset({"blocked"})),
    # https://dev.mailjet.com/email/guides/webhooks/#bounce: hard_bounce false
    "Mailjet": (("hard_bounce",), frozenset({"False"})),
}
SUPPRESSED_FOR_OPT_OUT: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    # https://documentation.mailgun.com/docs/mailgun/user-manual/events/: a "failed" event with reason
    # suppress-unsubscribe / suppress-complaint was not sent because the address is on those lists
    "Mailgun": (("event-data", "reason"), frozenset({"suppress-unsubscribe", "suppress-complaint"})),
}
NOT_A_RESUBSCRIBE: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    # Brevo's list_addition is a contact added to a list, by whoever manages the lists: not the patient's act
    "Brevo": (("event",), frozenset({"list_addition"})),
}
ESP_OPT_OUT_SOURCES = frozenset({OptOutSource.EMAIL_COMPLAINT, OptOutSource.EMAIL_UNSUBSCRIBE})


def _esp_field(esp_event: Any, path: tuple[str, ...]) -> str:
    value = esp_event
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return str(value) if value is not None else ""


def _matches(table: dict[str, tuple[tuple[str, ...], frozenset[str]]], esp_name: str, esp_event: Any) -> bool:
    row = table.get(esp_name)
    return row is not None and _esp_field(esp_event, row[0]) in row[1]


def event_key(*, esp_name: str, event: Any) -> str:
    """The identity of one event: the ESP's event id when it gives one, with the type and recipient (an SES
    notification is one id for every recipient), else the report itself. A retry has the same key."""
    parts = [
        esp_name,
        event.event_id or "",
        event.event_type or "",
        event.message_id or "",
        event.recipient or "",
        event.timestamp.isoformat() if isinstance(event.timestamp, datetime) else str(event.timestamp or ""),
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _message_for(event: Any) -> Message | None:
    email = Message.objects.select_related("organization").filter(channel=Channel.EMAIL)
    message = email.filter(provider_id=event.message_id).first() if event.message_id else None
    if message is None:
        ours = str((event.metadata or {}).get("message_id", ""))
        if ours.isdigit():
            message = email.filter(pk=int(ours)).first()
    return message


def email_event_apply(*, esp_name: str, event: Any) -> str:
    """Apply one anymail tracking event (``AnymailTrackingEvent``) from ``esp_name``'s webhook."""
    if event.event_type not in ACTED_ON:
        return IGNORED
    message = _message_for(event)
    if message is None:
        return UNKNOWN_MESSAGE
    at = event.timestamp if isinstance(event.timestamp, datetime) else timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                ProviderEvent.objects.create(
                    provider=f"anymail-{settings.ANYMAIL_ESP}"[:20],
                    event_id=event_key(esp_name=esp_name, event=event),
                    received_at=timezone.now(),
                )
        except IntegrityError:
            return DUPLICATE
        _apply(message=message, event=event, esp_name=esp_name, at=at)
    return APPLIED


def _apply(*, message: Message, event: Any, esp_name: str, at: datetime) -> None:
    kind, esp_event = event.event_type, event.esp_event
    if kind == "delivered":
        message_transition(message_id=message.pk, to=State.DELIVERED, delivered_at=at)
        return
    if kind == "subscribed":
        if not _matches(NOT_A_RESUBSCRIBE, esp_name, esp_event):
            _resubscribe(message=message, event=event, esp_name=esp_name, at=at)
        return
    dropped_for_opt_out = kind in FAILURE_EVENTS and (
        event.reject_reason in OPT_OUT_REJECT_REASONS or _matches(SUPPRESSED_FOR_OPT_OUT, esp_name, esp_event)
    )
    if kind in OPT_OUT_EVENTS or dropped_for_opt_out:
        complaint = (
            kind == "complained"
            or event.reject_reason == "spam"
            or "complaint" in _esp_field(esp_event, ("event-data", "reason"))
        )
        opt_out_set(
            organization=message.organization, channel=Channel.EMAIL, address=message.destination, active=True,
            source=OptOutSource.EMAIL_COMPLAINT if complaint else OptOutSource.EMAIL_UNSUBSCRIBE, at=at,
            text=event_detail(event=event, esp_name=esp_name),
        )  # fmt: skip
        if dropped_for_opt_out:
            # Never reached the patient, and not a bad address: cancelled, like an SMS refused with 21610.
            Message.objects.filter(
                pk=message.pk, state__in=(State.SENDING, State.SENT, State.UNKNOWN)
            ).update(state=State.CANCELLED, reason=Reason.OPTED_OUT, updated_at=at)
        return
    reason = {"bounced": Reason.BOUNCED, "rejected": Reason.REJECTED}.get(kind, Reason.PROVIDER_FAILED)
    detail = (event.description or event.mta_response or event.reject_reason or "")[:500]
    moved = message_transition(
        message_id=message.pk, to=State.UNDELIVERED, reason=reason, error_message=detail
    )
    if not moved and kind == "bounced" and not _matches(SOFT_BOUNCES, esp_name, esp_event):
        # N3: the one move back: a hard bounce after the delivery report (the receiving server accepted
        # the message, then bounced it).
        Message.objects.filter(pk=message.pk, state=State.DELIVERED).update(
            state=State.UNDELIVERED, reason=reason, error_message=detail, updated_at=timezone.now()
        )


def event_detail(*, event: Any, esp_name: str) -> str:
    """The ledger's text for an ESP event (K3): the ESP, anymail's normalized event type, the ESP's own event
    id and whatever reason it gave, e.g. ``Postmark complained (event 4e0b…): spam complaint``."""
    reason = event.description or event.reject_reason or event.mta_response or ""
    head = f"{esp_name} {event.event_type}" + (f" (event {event.event_id})" if event.event_id else "")
    return f"{head}: {reason}" if reason else head


def _resubscribe(*, message: Message, event: Any, esp_name: str, at: datetime) -> None:
    address = message.destination
    held = OptOut.objects.filter(
        organization=message.organization, channel=Channel.EMAIL, address=address, active=True,
        source__in=ESP_OPT_OUT_SOURCES,
    ).exists()  # fmt: skip
    if held:
        opt_out_set(organization=message.organization, channel=Channel.EMAIL, address=address, active=False,
                    source=OptOutSource.EMAIL_RESUBSCRIBE, at=at,
                    text=event_detail(event=event, esp_name=esp_name))  # fmt: skip
