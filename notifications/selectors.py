"""Reads for the dashboard (HackSoft selectors): querysets limited to the user's organizations (T1)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from notifications.models import UNDELIVERABLE_STATES, Message
from practices.tenancy import scope_to_user


def undeliverable_messages(*, user: Any, organization_ids: Iterable[int] | None = None) -> QuerySet[Message]:
    """The undeliverable list (U1): messages of the user's organizations that could not be delivered
    (``undelivered`` or ``failed``: no destination, invalid or landline number, provider undelivered/failed,
    email bounce), newest first.

    A message that has been resent is left out: the list holds what still needs the front desk. Its resend
    is a message of its own and comes back on the list if it cannot be delivered either.
    ``organization_ids`` narrows the list further; it never widens it beyond the user's organizations.
    """
    messages = Message.objects.filter(state__in=UNDELIVERABLE_STATES).exclude(
        Exists(Message.objects.filter(resend_of=OuterRef("pk")))
    )
    messages = scope_to_user(messages, user)
    if organization_ids is not None:
        messages = messages.filter(organization_id__in=list(organization_ids))
    return messages.select_related("patient", "organization", "bill").order_by("-updated_at", "-id")
