"""Opt-outs the patient asked for (N2, N3), kept apart from the PMS consent flags and never cleared by a feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from notifications.models import OPEN_STATES, Channel, Message, OptOut, OptOutEvent, Reason, State
from practices.models import Organization, Patient


@transaction.atomic
def opt_out_set(
    *, organization: Organization, channel: str, address: str, active: bool, source: str, keyword: str = "",
    at: datetime | None = None, text: str = "", actor: Any = None,
) -> OptOut:  # fmt: skip
    """Record an opt-out (``active=True``) or re-subscription, and its row in the consent ledger (K3). An
    opt-out cancels at once every pending and scheduled message on that channel to that address.

    ``text``: the exact inbound text or provider event detail that caused it (kept as proof); ``actor``: the
    staff user who recorded it, None for the patient's own action through a provider."""
    moment = at or timezone.now()
    opt_out, created = OptOut.objects.select_for_update().get_or_create(
        organization=organization,
        channel=channel,
        address=address,
        defaults={"active": active, "source": source, "keyword": keyword, "changed_at": moment},
    )
    if not created and opt_out.active != active:
        opt_out.active, opt_out.source, opt_out.keyword, opt_out.changed_at = active, source, keyword, moment
        opt_out.save(update_fields=["active", "source", "keyword", "changed_at"])
    OptOutEvent.objects.create(
        organization=organization, channel=channel, address=address, opt_out=opt_out, active=active,
        source=source, keyword=keyword, text=ledger_text(text), at=moment, **actor_fields(actor),
    )  # fmt: skip
    if active:
        Message.objects.filter(
            organization=organization, channel=channel, destination=address, state__in=OPEN_STATES
        ).update(state=State.CANCELLED, reason=Reason.OPTED_OUT, updated_at=moment)
    return opt_out


# Twilio's longest inbound body is 1 600 characters; an event detail is shorter. Longer text is cut, not refused.
LEDGER_TEXT_LIMIT = 2000


def ledger_text(text: str) -> str:
    """The text as the ledger keeps it, whatever it came as: PostgreSQL text holds neither NUL nor a lone
    surrogate (both become U+FFFD / "?")."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")[:LEDGER_TEXT_LIMIT]


def actor_fields(actor: Any) -> dict[str, Any]:
    """A ledger row's ``actor`` and ``actor_name`` (kept should the user be deleted); none for no user."""
    if getattr(actor, "pk", None) is None:
        return {"actor": None, "actor_name": ""}
    return {"actor": actor, "actor_name": (actor.get_full_name() or actor.get_username())[:150]}


def is_opted_out(
    *, patient: Patient, channel: str, address: str, address_opted_out: bool | None = None
) -> bool:
    """The patient's own opt-out at that address, or the PMS consent flag for the channel.

    ``address_opted_out``: the opt-out table's answer when the caller already read it (with the message,
    in the same query); None reads it here."""
    if channel == Channel.SMS and patient.pms_sms_opt_out:
        return True
    if channel == Channel.EMAIL and patient.pms_email_opt_out:
        return True
    if channel == Channel.PAPER or not address:
        return False
    if address_opted_out is not None:
        return address_opted_out
    return OptOut.objects.filter(
        organization_id=patient.organization_id, channel=channel, address=address, active=True
    ).exists()
