"""Resending an undeliverable message from the front desk (U1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import phonenumbers
from django.db import transaction
from django.utils import timezone

from notifications.models import UNDELIVERABLE_STATES, Channel, Kind, Message, Reason
from notifications.optouts import is_opted_out
from notifications.outbox import message_create
from notifications.templating import OPT_OUT_HINT, render_message, template_for
from practices.models import BillState
from practices.services import audit_record

# Reasons where sending again to the same destination may work (Twilio 30003: handset off or out of range).
AS_IS_REASONS = frozenset({Reason.UNREACHABLE})


class ResendError(Exception):
    """The resend was refused; the message says why, in words for the front desk."""


def normalise_mobile_number(raw: str) -> str:
    """``raw`` as E.164 (US region for numbers without a country code); ResendError when it is not valid."""
    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        raise ResendError(f"“{raw}” is not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise ResendError(f"“{raw}” is not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def last_digits(destination: str, count: int = 4) -> str:
    return destination[-count:] if destination else ""


def message_resend(
    *,
    message: Message,
    user: Any,
    mobile_number: str = "",
    consented: bool = False,
    now: datetime | None = None,
) -> Message:
    """Send an undeliverable ``message`` again as a new ``resend`` message and return it.

    With ``mobile_number`` it goes by SMS to that number (the patient's consent to texts there is required and
    recorded with user and time); the number is used for this message only and never written to the patient.
    Without one it goes again to the original channel and destination, for reasons where that may work.
    Thresholds do not apply; opt-outs do, and quiet hours are applied by the outbox. Raises ResendError.
    """
    moment = now or timezone.now()
    quick_added = bool(mobile_number.strip())
    with transaction.atomic():
        # Locked so that a double click or two staff members cannot resend the same message twice.
        original = (
            Message.objects.select_for_update(of=("self",))
            .select_related("organization", "patient__organization", "bill")
            .get(pk=message.pk)
        )
        if original.state not in UNDELIVERABLE_STATES:
            raise ResendError(f"This message is {original.get_state_display().lower()}, not undeliverable.")
        if Message.objects.filter(resend_of=original).exists():
            raise ResendError("This message has already been resent.")
        patient = original.patient
        if patient.do_not_contact:
            raise ResendError("The patient is flagged do-not-contact in the practice-management system.")
        if original.bill_id is not None and original.bill.state != BillState.ACTIVE:
            raise ResendError(f"The bill is {original.bill.get_state_display().lower()}; nothing to resend.")

        if quick_added:
            destination = normalise_mobile_number(mobile_number.strip())
            if not consented:
                raise ResendError("Confirm that the patient consented to receive texts at this number.")
            channel, postal_address = Channel.SMS, {}
        else:
            if original.reason not in AS_IS_REASONS:
                raise ResendError("Sending to the same destination again will not work; add a mobile number.")
            channel, destination, postal_address = (
                original.channel,
                original.destination,
                original.postal_address,
            )
            if not destination and not postal_address:
                raise ResendError("There is nothing on file to send to; add a mobile number.")

        if is_opted_out(patient=patient, channel=channel, address=destination):
            raise ResendError(f"The patient opted out of {Channel(channel).label} at this destination.")

        resend = message_create(
            Message(
                **_content_for(original, channel),
                organization=original.organization,
                patient=patient,
                bill=original.bill,
                generation=original.generation,
                step_key="",
                kind=Kind.RESEND,
                channel=channel,
                context=original.context,
                destination=destination,
                postal_address=postal_address,
                created_by=user if getattr(user, "pk", None) else None,
                resend_of=original,
                consent_by=user if quick_added else None,
                consent_at=moment if quick_added else None,
            ),
            now=moment,
        )
        audit_record(
            organization=original.organization,
            actor=user,
            action="message.resend",
            obj=resend,
            changes={
                "resend_of": original.pk,
                "channel": channel,
                # Only the last digits: the audit log is no place for a full phone number (T4).
                "destination_last4": last_digits(destination) if channel == Channel.SMS else "",
                "quick_added": quick_added,
                "consented": quick_added and consented,
                "state": resend.state,
            },
        )
    return resend


def _content_for(original: Message, channel: str) -> dict[str, object]:
    """The resend's template, subject and body: the original's on the same channel; on another channel (an
    email resent by text) the template of the original's kind for that channel, rendered with the values the
    original was rendered with, so that an SMS always carries the opt-out hint (N4)."""
    if channel == original.channel:
        return {"template": original.template, "subject": original.subject, "body": original.body}
    template = template_for(organization=original.organization, kind=original.kind, channel=channel)
    subject, body = render_message(template=template, values={k: str(v) for k, v in original.context.items()})
    if channel == Channel.SMS and OPT_OUT_HINT.lower() not in body.lower():
        body = f"{body} {OPT_OUT_HINT}."
    return {"template": template, "subject": subject, "body": body}
