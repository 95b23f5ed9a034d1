"""Dunning services beyond the engine: the daily schedule per organization and the admin resend."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from dunning.models import DunningDecision, DunningRun
from dunning.selectors import dunning_settings_get
from notifications.models import Kind, Message
from notifications.outbox import message_create
from practices.models import BillState, Organization
from practices.services import audit_record


class ResendError(ValueError):
    pass


def organizations_due_for_run(*, now: datetime | None = None) -> list[tuple[int, date]]:
    """(organization id, local date) for every organization whose daily run time has passed in its own zone
    today and that has not run for that date yet. Called by a beat tick every few minutes, so each
    organization runs once a day at its local time without a beat entry per organization."""
    moment = now or timezone.now()
    due = []
    for organization in Organization.objects.all():
        # The same settings the engine and the importer read, saved or default (a default row has a preset).
        settings = dunning_settings_get(organization=organization)
        if settings.preset_id is None:
            continue
        local = moment.astimezone(organization.tzinfo)
        if local.time() < settings.run_at:
            continue
        today = local.date()
        if not DunningRun.objects.filter(organization=organization, run_date=today).exists():
            due.append((organization.pk, today))
    return due


@transaction.atomic
def decision_resend(*, decision: DunningDecision, user: Any, now: datetime | None = None) -> Message:
    """An admin resend of a step (S4/S5: bypasses the thresholds; not opt-outs, quiet hours or a closed bill)."""
    bill = decision.bill
    if bill.state != BillState.ACTIVE:
        raise ResendError(f"The campaign {bill.bill_id} is {bill.state}; nothing to resend.")
    if decision.message is None:
        raise ResendError("This decision produced no message to resend (it was skipped).")
    original = decision.message
    message = message_create(
        Message(
            organization=original.organization, patient=original.patient, bill=bill, generation=bill.generation,
            step_key="", kind=Kind.RESEND, channel=original.channel, template=original.template,
            subject=original.subject, body=original.body, context=original.context, destination=original.destination,
            postal_address=original.postal_address, created_by=user if getattr(user, "pk", None) else None,
            resend_of=original,
        ),
        now=now,
    )  # fmt: skip
    audit_record(
        organization=original.organization, actor=user, action="dunning.resend", obj=message,
        changes={"decision": decision.pk, "bill": bill.bill_id, "channel": original.channel},
    )  # fmt: skip
    return message
