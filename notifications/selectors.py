"""Reads for the dashboard (HackSoft selectors): querysets limited to the user's organizations (T1)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet

from notifications.models import UNDELIVERABLE_STATES, Message, Reason
from practices.models import BILL_ENDED_STATES
from practices.tenancy import scope_to_user

# Failures the front desk cannot fix with another number, kept off the undeliverable list: the recipient
# opted out (N2 21610, N3), or the carrier filtered the content (30007: the same text to another number is
# filtered again; ops review it through the outbox admin's "Carrier filtered" filter).
NOT_FOR_THE_FRONT_DESK = frozenset({Reason.OPTED_OUT, Reason.CARRIER_FILTERED})


def undeliverable_filter(messages: QuerySet[Message]) -> QuerySet[Message]:
    """``messages`` narrowed to what the undeliverable list (U1) holds: not opt-outs or carrier filtering, and
    not the messages of a bill that was paid or closed (collections, written off) or reset since, which
    nobody can resend."""
    return (
        messages.filter(state__in=UNDELIVERABLE_STATES)
        .exclude(reason__in=NOT_FOR_THE_FRONT_DESK)
        .exclude(bill__state__in=BILL_ENDED_STATES)
        # Spelled with bill__isnull: a message without a bill compares with NULL, which must not exclude it.
        .exclude(Q(bill__isnull=False) & Q(generation__lt=F("bill__generation")))
    )


def undeliverable_messages(*, user: Any, organization_ids: Iterable[int] | None = None) -> QuerySet[Message]:
    """The undeliverable list (U1): messages of the user's organizations that could not be delivered
    (``undelivered`` or ``failed``: no destination, invalid or landline number, provider undelivered/failed,
    email bounce), newest first. Opt-outs and carrier filtering are not the front desk's to fix and are
    left out (``NOT_FOR_THE_FRONT_DESK``).

    A message that has been resent is left out: the list holds what still needs the front desk. Its resend
    is a message of its own and comes back on the list if it cannot be delivered either.
    ``organization_ids`` narrows the list further; it never widens it beyond the user's organizations.
    """
    messages = undeliverable_filter(Message.objects.all()).exclude(
        Exists(Message.objects.filter(resend_of=OuterRef("pk")))
    )
    messages = scope_to_user(messages, user)
    if organization_ids is not None:
        messages = messages.filter(organization_id__in=list(organization_ids))
    return messages.select_related("patient", "organization", "bill").order_by("-updated_at", "-id")
