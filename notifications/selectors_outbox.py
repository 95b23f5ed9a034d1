"""Read side of the outbox for commands and the admin."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from notifications.models import Message
from practices.models import Organization


def outbox_messages(
    *, organization: Organization, guarantor_id: str = "", state: str = ""
) -> QuerySet[Message]:
    messages = (
        Message.objects.filter(organization=organization).select_related("patient", "bill").order_by("id")
    )
    if guarantor_id:
        messages = messages.filter(patient__guarantor_external_id=guarantor_id)
    if state:
        messages = messages.filter(state=state)
    return messages


def outbox_row(message: Message) -> dict[str, Any]:
    """One message as in the `list_messages` contract (SPEC §10)."""
    return {
        "id": message.pk,
        "guarantor_id": message.patient.guarantor_external_id,
        "bill_id": message.bill.bill_id if message.bill is not None else None,
        "channel": message.channel,
        "kind": message.kind,
        "state": message.state,
        "scheduled_for": message.scheduled_for.isoformat() if message.scheduled_for else None,
        "provider_id": message.provider_id,
        "error_code": message.error_code,
        "reason": message.reason,
    }
