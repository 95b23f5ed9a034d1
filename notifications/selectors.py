"""Reads for the dashboard (HackSoft selectors): querysets limited to the user's organizations (T1)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce, NullIf

from notifications.models import (
    ELECTRONIC_ONLY_KINDS,
    UNDELIVERABLE_STATES,
    Channel,
    Kind,
    Message,
    Reason,
    State,
)
from practices.models import BILL_ENDED_STATES
from practices.tenancy import scope_to_user

# Failures the front desk cannot fix with another number, kept off the undeliverable list: the recipient
# opted out (N2 21610, N3), or the carrier filtered the content (30007: the same text to another number is
# filtered again; ops review it through the outbox admin's "Carrier filtered" filter).
NOT_FOR_THE_FRONT_DESK = frozenset({Reason.OPTED_OUT, Reason.CARRIER_FILTERED})


# A message in one of these states has reached the patient or is on its way (held by quiet hours included).
REACHING_STATES = (State.PENDING, State.SCHEDULED, State.SENDING, State.SENT, State.DELIVERED)

# The reason "no destination" in the words of each channel: the list says which one is missing.
NO_DESTINATION_BY_CHANNEL = {
    Channel.SMS: "No mobile number on file",
    Channel.EMAIL: "No email address on file",
    Channel.PAPER: "No valid mailing address on file",
}


def undeliverable_reason(message: Message) -> str:
    """Why ``message`` could not be delivered, for its own channel (one reason list serves all three)."""
    if message.reason == Reason.NO_DESTINATION:
        return NO_DESTINATION_BY_CHANNEL[Channel(message.channel)]
    return message.get_reason_display()


def _communication() -> Coalesce:
    """The step a message stands for: its own step key, or for a resend the step key of the message it
    resends (a resend has none of its own)."""
    return Coalesce(NullIf(F("step_key"), Value("")), F("resend_of__step_key"))


def undeliverable_filter(messages: QuerySet[Message]) -> QuerySet[Message]:
    """``messages`` narrowed to what the undeliverable list (U1) holds: not opt-outs or carrier filtering, and
    not the messages of a bill that was paid or closed (collections, written off) or reset since, which
    nobody can resend."""
    return (
        messages.filter(state__in=UNDELIVERABLE_STATES)
        .exclude(reason__in=NOT_FOR_THE_FRONT_DESK)
        # A payment's receipt (H4) is no request to resend: the patient has the receipt page and its PDF.
        .exclude(kind=Kind.RECEIPT)
        # A plan's decline notice (H5) has no bill to resend a link of; staff see the plan's state instead.
        .exclude(kind__in=ELECTRONIC_ONLY_KINDS)
        .exclude(bill__state__in=BILL_ENDED_STATES)
        # Spelled with bill__isnull: a message without a bill compares with NULL, which must not exclude it.
        .exclude(Q(bill__isnull=False) & Q(generation__lt=F("bill__generation")))
    )


def undeliverable_messages(*, user: Any, organization_ids: Iterable[int] | None = None) -> QuerySet[Message]:
    """The undeliverable list (U1): messages of the user's organizations that could not be delivered
    (``undelivered`` or ``failed``: no destination, invalid or landline number, provider undelivered/failed,
    email bounce), newest first. Opt-outs and carrier filtering are not the front desk's to fix and are
    left out (``NOT_FOR_THE_FRONT_DESK``).

    The list holds what still needs the front desk, so two more kinds are left out. A message that has been
    resent: its resend is a message of its own and comes back on the list if it cannot be delivered either.
    And a channel gap when the patient was reached anyway: another message of the same step of the same
    campaign (a sibling on another channel, or a resend of one) went out or is on its way, so the patient
    has this request and nothing is left to fix here (the PMS record is another matter). If that message
    fails in turn, the gap is back on the list with it.
    ``organization_ids`` narrows the list further; it never widens it beyond the user's organizations.
    """
    reaching = (
        Message.objects.annotate(communication=_communication())
        .filter(
            bill=OuterRef("bill"), generation=OuterRef("generation"), communication=OuterRef("communication"),
            state__in=REACHING_STATES,
        )
    )  # fmt: skip
    messages = (
        undeliverable_filter(Message.objects.all())
        .annotate(communication=_communication())
        .exclude(Exists(Message.objects.filter(resend_of=OuterRef("pk"))))
        .exclude(Exists(reaching))
    )
    messages = scope_to_user(messages, user)
    if organization_ids is not None:
        messages = messages.filter(organization_id__in=list(organization_ids))
    return messages.select_related("patient", "organization", "bill").order_by("-updated_at", "-id")
