"""Resending a message: the front desk's undeliverable list (U1) and the admin resend of a dunning step (S4/S5),
through one path with one set of guards."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import phonenumbers
from django.db import transaction
from django.utils import timezone

from notifications.consent import consent_record
from notifications.models import UNDELIVERABLE_STATES, Channel, Kind, Message, OptOutSource, Reason, State
from notifications.number_checks import NumberCheck, number_check
from notifications.optouts import is_opted_out
from notifications.outbox import message_create
from notifications.templating import OPT_OUT_HINT, render_message, template_for
from practices.models import BILL_ENDED_STATES
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
    """Send an undeliverable ``message`` again as a new ``resend`` message and return it (U1).

    With ``mobile_number`` it goes by SMS to that number (the patient's consent to texts there is required and
    recorded with user and time); the number is used for this message only and never written to the patient.
    Its line type is checked first (K5, ``message_resend_checked``). Without one it goes again to the original
    channel and destination, for reasons where that may work. Thresholds do not apply; opt-outs do, and quiet
    hours are applied by the outbox. Raises ResendError.
    """
    resend, _ = message_resend_checked(
        message=message, user=user, mobile_number=mobile_number, consented=consented, now=now
    )
    return resend


def message_resend_checked(
    *,
    message: Message,
    user: Any,
    mobile_number: str = "",
    consented: bool = False,
    now: datetime | None = None,
) -> tuple[Message, NumberCheck | None]:
    """``message_resend``, with the K5 number check of a quick-added number (None without one).

    Before the first text to a quick-added number Twilio Lookup is asked its line type (once per number and
    organization); a number that cannot take texts is refused with ResendError, nothing is created (no
    message, no consent row) and nothing is texted. The Lookup request is made before the original is locked.
    """
    quick_added = bool(mobile_number.strip())
    check: NumberCheck | None = None
    if quick_added:
        number = normalise_mobile_number(mobile_number.strip())
        if not consented:
            raise ResendError("Confirm that the patient consented to receive texts at this number.")
        # The guards that need no lock first, so that a resend refused anyway costs no Lookup request; all
        # are checked again under the lock.
        _refuse_early(message=message, channel=Channel.SMS, destination=number)
        check = number_check(organization=message.organization, number=number, actor=user, now=now)
        if not check.textable:
            raise ResendError(check.refusal)

    def target(original: Message) -> tuple[str, str, dict[str, Any]]:
        if original.state not in UNDELIVERABLE_STATES:
            raise ResendError(f"This message is {original.get_state_display().lower()}, not undeliverable.")
        if check is not None:
            return Channel.SMS, check.number, {}
        if original.reason not in AS_IS_REASONS:
            raise ResendError("Sending to the same destination again will not work; add a mobile number.")
        if not original.destination and not original.postal_address:
            raise ResendError("There is nothing on file to send to; add a mobile number.")
        return original.channel, original.destination, original.postal_address

    audit: dict[str, Any] = {"quick_added": quick_added, "consented": quick_added and consented}
    if check is not None:
        audit["line_type"] = check.outcome
    resend = _resend(
        message=message, user=user, now=now, target=target, consented=quick_added and consented,
        action="message.resend", audit=audit,
    )  # fmt: skip
    return resend, check


# A step's message may be sent again by staff once it has left us or could not be delivered; one still
# waiting (pending, held) or cancelled has nothing to repeat.
STEP_RESENDABLE_STATES = frozenset({State.SENT, State.DELIVERED, *UNDELIVERABLE_STATES})


def message_resend_step(
    *, message: Message, user: Any, now: datetime | None = None, audit: dict[str, Any] | None = None
) -> Message:
    """Send a dunning step's ``message`` again to the same channel and destination (the admin resend of the
    decision trail, S4/S5: it bypasses the thresholds, not opt-outs, do-not-contact, quiet hours or an ended
    bill). The same locks and guards as ``message_resend``; ``audit`` adds the caller's facts to the audit
    row. Raises ResendError."""

    def target(original: Message) -> tuple[str, str, dict[str, Any]]:
        if original.state not in STEP_RESENDABLE_STATES:
            raise ResendError(
                f"This message is {original.get_state_display().lower()}; nothing to resend yet."
            )
        return original.channel, original.destination, original.postal_address

    return _resend(
        message=message, user=user, now=now, target=target, consented=False, action="dunning.resend",
        audit=audit or {},
    )  # fmt: skip


def _resend(
    *,
    message: Message,
    user: Any,
    now: datetime | None,
    target: Callable[[Message], tuple[str, str, dict[str, Any]]],
    consented: bool,
    action: str,
    audit: dict[str, Any],
) -> Message:
    """The one resend path: lock the original, refuse a second resend, a do-not-contact patient, an ended or
    reset bill and an opted-out destination, create the ``resend`` message through the outbox, audit it."""
    moment = now or timezone.now()
    with transaction.atomic():
        # Locked so that a double click or two staff members cannot resend the same message twice.
        original = (
            Message.objects.select_for_update(of=("self",))
            .select_related("organization", "patient__organization", "bill")
            .get(pk=message.pk)
        )
        _refuse_resent_or_ended(original)
        patient, bill = original.patient, original.bill
        channel, destination, postal_address = target(original)
        if is_opted_out(patient=patient, channel=channel, address=destination):
            raise ResendError(f"The patient opted out of {Channel(channel).label} at this destination.")

        resend = message_create(
            Message(
                **_content_for(original, channel),
                organization=original.organization,
                patient=patient,
                bill=bill,
                generation=original.generation,
                step_key="",
                kind=Kind.RESEND,
                channel=channel,
                context=original.context,
                destination=destination,
                postal_address=postal_address,
                created_by=user if getattr(user, "pk", None) else None,
                resend_of=original,
                consent_by=user if consented else None,
                consent_at=moment if consented else None,
            ),
            now=moment,
        )
        if consented:
            # K3: the staff-recorded consent is a ledger row, with the user who recorded it.
            consent_record(
                organization=original.organization, channel=channel, address=destination, active=False,
                source=OptOutSource.QUICK_ADD, patient=patient, actor=user, at=moment,
                text=f"Consent to texts at this number confirmed on the undeliverable list (resend of message "
                f"{original.pk})",
            )  # fmt: skip
        audit_record(
            organization=original.organization,
            actor=user,
            action=action,
            obj=resend,
            changes={
                **audit,
                "resend_of": original.pk,
                "channel": channel,
                # Only the last digits: the audit log is no place for a full phone number (T4).
                "destination_last4": last_digits(destination) if channel == Channel.SMS else "",
                "state": resend.state,
            },
        )
    return resend


def _refuse_resent_or_ended(original: Message) -> None:
    """ResendError when ``original`` was resent already, its patient is do-not-contact, or its bill ended or
    was reset since."""
    if Message.objects.filter(resend_of=original).exists():
        raise ResendError("This message has already been resent.")
    if original.patient.do_not_contact:
        raise ResendError("The patient is flagged do-not-contact in the practice-management system.")
    bill = original.bill
    if bill is not None and bill.state in BILL_ENDED_STATES:
        raise ResendError(f"The bill is {bill.get_state_display().lower()}; nothing to resend.")
    if bill is not None and original.generation < bill.generation:
        raise ResendError("The bill was reset since this message; its new schedule is under way.")


def _refuse_early(*, message: Message, channel: str, destination: str) -> None:
    """``_resend``'s refusals, read without the lock (K5: before a paid Lookup request)."""
    original = Message.objects.select_related("organization", "patient__organization", "bill").get(
        pk=message.pk
    )
    _refuse_resent_or_ended(original)
    if original.state not in UNDELIVERABLE_STATES:
        raise ResendError(f"This message is {original.get_state_display().lower()}, not undeliverable.")
    if is_opted_out(patient=original.patient, channel=channel, address=destination):
        raise ResendError(f"The patient opted out of {Channel(channel).label} at this destination.")


def _content_for(original: Message, channel: str) -> dict[str, object]:
    """The resend's template, subject and body: the original's on the same channel; on another channel (an
    email resent by text) the template of the original's kind for that channel, rendered with the values the
    original was rendered with, so that an SMS always carries the opt-out hint (N4)."""
    if channel == original.channel:
        return {"template": original.template, "subject": original.subject, "body": original.body}
    template = template_for(
        organization=original.organization,
        kind=original.kind,
        channel=channel,
        language=original.patient.language,
    )
    subject, body = render_message(template=template, values={k: str(v) for k, v in original.context.items()})
    if channel == Channel.SMS and OPT_OUT_HINT.lower() not in body.lower():
        body = f"{body} {OPT_OUT_HINT}."
    return {"template": template, "subject": subject, "body": body}
