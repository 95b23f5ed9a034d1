"""Dunning services beyond the engine: the daily schedule per organization and the admin resend."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.utils import timezone

from dunning.models import DunningDecision, DunningRun, DunningSettings
from dunning.selectors import dunning_settings_get
from notifications.models import Message
from notifications.resend import ResendError, message_resend_step
from practices.models import Organization

__all__ = ["ResendError", "decision_resend", "dunning_settings_create", "organizations_due_for_run"]


def dunning_settings_create(*, organization: Organization) -> DunningSettings:
    """The organization's settings row, created with the defaults (the standard preset) when it has none;
    called when an organization is created (``organization_settings_create``)."""
    row = dunning_settings_get(organization=organization)
    if row.pk is None:
        row.save()
    return row


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


def decision_resend(*, decision: DunningDecision, user: Any, now: datetime | None = None) -> Message:
    """An admin resend of a step (S4/S5: bypasses the thresholds; not opt-outs, do-not-contact, quiet hours
    or an ended bill), through the one resend path of notifications."""
    message = decision.message
    if message is None:
        raise ResendError("This decision produced no message to resend (it was skipped).")
    return message_resend_step(
        message=message, user=user, now=now,
        audit={"decision": decision.pk, "bill": decision.bill.bill_id},
    )  # fmt: skip
