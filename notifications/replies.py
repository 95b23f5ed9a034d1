"""The replies review queue (K4): inbound texts that are no keyword but are, or might be, a request to stop.

``inbound_reviews_record`` is called by the inbound webhook (notifications/inbound.py) with the phrase table's
verdict: an opt-out phrase opts the number out at once and is kept as an item already ``opted_out``; a reply
that might be one waits ``open`` for a person. Staff decide an open item with ``inbound_review_decide``:
"Opt out this number" (the opt-out, audited, and exactly one confirmation text, sent by a worker) or
"Not an opt-out" (audited, nothing sent).

One confirmation, never two (K4): the text goes only when the opt-out is new (a number already opted out
gets nothing more), in our answer to the webhook for a phrase (Twilio does not confirm what is not its
keyword) or through the Messages API for a staff decision; a redelivered task finds the claim taken.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from notifications.models import (
    Channel,
    Confirmation,
    InboundReview,
    Message,
    OptOut,
    OptOutSource,
    ReviewState,
)
from notifications.optouts import ledger_text, opt_out_set
from notifications.providers import twilio
from notifications.revocation import Classification, Verdict
from practices.models import Organization, Patient
from practices.services import audit_record

logger = logging.getLogger(__name__)

# What "Opt out this number" and "Not an opt-out" decide.
DECISIONS = (ReviewState.OPTED_OUT, ReviewState.DISMISSED)


class ReviewError(Exception):
    """A decision that cannot be taken (the item was decided already), in words for staff."""


def confirmation_text(*, organization: Organization | None, language: str) -> str:
    """The one text that confirms an opt-out, in the language of the reply that asked for it. The Spanish is
    worded without accents so it stays GSM-7 (one segment), as the Spanish templates are."""
    name = f"{organization.name}: " if organization is not None else ""
    if language == "es":
        return f"{name}Se ha dado de baja y no recibira mas mensajes de texto nuestros. Responda START para volver a suscribirse."
    return f"{name}You are unsubscribed and will get no more texts from us. Reply START to resubscribe."


def _opted_out(organization: Organization, number: str) -> bool:
    return OptOut.objects.filter(
        organization=organization, channel=Channel.SMS, address=number, active=True
    ).exists()


def patients_at(*, organization: Organization, number: str) -> QuerySet[Patient]:
    """The patients of ``organization`` a text from ``number`` may come from: the number is their mobile, or
    we texted them there (a quick-added number, U1)."""
    texted = Message.objects.filter(organization=organization, channel=Channel.SMS, destination=number)
    return Patient.objects.filter(organization=organization).filter(
        Q(mobile_phone=number) | Q(pk__in=texted.values("patient_id"))
    )


def inbound_reviews_record(
    *,
    organizations: Iterable[Organization],
    number: str,
    text: str,
    message_sid: str,
    at: datetime,
    found: Classification,
) -> list[InboundReview]:
    """K4, from the inbound webhook: one item per organization the sender concerns. An opt-out phrase opts
    the number out now (the ledger keeps the exact text, source ``sms_phrase``) and the item is
    ``opted_out``, with ``confirmation`` ``in_reply`` when the opt-out is new (the caller answers Twilio with
    the confirmation); a reply that might be one is ``open``, on the queue."""
    if found.verdict == Verdict.NONE:
        return []
    kept = ledger_text(text)
    reviews = []
    with transaction.atomic():
        for organization in organizations:
            review = InboundReview(
                organization=organization, number=number, text=kept, message_sid=message_sid[:64],
                received_at=at, rule=found.rule, language=found.language,
            )  # fmt: skip
            if found.verdict == Verdict.OPT_OUT:
                new = not _opted_out(organization, number)
                opt_out_set(organization=organization, channel=Channel.SMS, address=number, active=True,
                            source=OptOutSource.SMS_PHRASE, text=text, at=at)  # fmt: skip
                review.state = ReviewState.OPTED_OUT
                review.decided_at = at
                review.confirmation = Confirmation.IN_REPLY if new else Confirmation.NONE
            review.save()
            review.patients.set(patients_at(organization=organization, number=number))
            reviews.append(review)
    return reviews


def inbound_reviews_close(*, organizations: Iterable[Organization], number: str, at: datetime) -> int:
    """A STOP keyword from ``number`` answers its open items: they are ``opted_out`` (by the keyword, no
    person), so nobody is asked about a number that has opted out since."""
    return InboundReview.objects.filter(
        organization__in=list(organizations), number=number, state=ReviewState.OPEN
    ).update(state=ReviewState.OPTED_OUT, decided_at=at)


def inbound_review_decide(
    *, review: InboundReview, decision: str, user: Any, at: datetime | None = None
) -> InboundReview:
    """Staff decide one open item: ``opted_out`` opts the number out of the organization's texts (the ledger
    row names the user and keeps the text) and queues exactly one confirmation when the opt-out is new;
    ``dismissed`` changes nothing else. Audited either way (T5). Raises ReviewError on a decided item."""
    if decision not in DECISIONS:
        raise ReviewError(f"Unknown decision {decision!r}.")
    moment = at or timezone.now()
    with transaction.atomic():
        locked = InboundReview.objects.select_for_update().select_related("organization").get(pk=review.pk)
        if locked.state != ReviewState.OPEN:
            who = "the STOP keyword" if locked.decided_by_id is None else str(locked.decided_by)
            raise ReviewError(f"Already decided ({locked.get_state_display().lower()}, by {who}).")
        organization = locked.organization
        if decision == ReviewState.OPTED_OUT:
            new = not _opted_out(organization, locked.number)
            opt_out_set(organization=organization, channel=Channel.SMS, address=locked.number, active=True,
                        source=OptOutSource.STAFF, text=locked.text, actor=user, at=moment)  # fmt: skip
            locked.confirmation = Confirmation.PENDING if new else Confirmation.NONE
        locked.state, locked.decided_by, locked.decided_at = decision, user, moment
        locked.save(update_fields=["state", "decided_by", "decided_at", "confirmation"])
        audit_record(
            organization=organization, actor=user, action=f"inbound_review.{decision}", obj=locked,
            changes={"number": f"…{locked.number[-4:]}", "text": locked.text[:200], "rule": locked.rule,
                     "confirmation": locked.confirmation or "none"},
        )  # fmt: skip
        if locked.confirmation == Confirmation.PENDING:
            review_id = locked.pk
            transaction.on_commit(lambda: _confirmation_later(review_id))
    return locked


def _confirmation_later(review_id: int) -> None:
    from notifications.tasks import send_opt_out_confirmation

    send_opt_out_confirmation.delay(review_id)


def opt_out_confirmation_send(*, review_id: int) -> str:
    """The confirmation of a staff opt-out, once: the item is claimed (``pending`` to ``sending``) before
    Twilio is asked, so a redelivered task or a second worker sends nothing. Returns the new state."""
    claimed = InboundReview.objects.filter(pk=review_id, confirmation=Confirmation.PENDING).update(
        confirmation=Confirmation.SENDING
    )
    if not claimed:
        return "claimed elsewhere"
    review = InboundReview.objects.select_related("organization").get(pk=review_id)
    organization = review.organization
    body = confirmation_text(organization=organization, language=review.language)
    if not settings.TWILIO_ENABLED:
        # The embedded default: log that it would have gone, without the body (T4).
        logger.info("sms (not sent: Twilio not configured) opt-out confirmation review=%s to=…%s",
                    review.pk, review.number[-4:])  # fmt: skip
        sid, state, error = f"log-review-{review.pk}", Confirmation.SENT, ""
    else:
        try:
            sent = twilio.send_sms(to=review.number, body=body, status_callback="",
                                   messaging_service_sid=organization.twilio_messaging_service_sid,
                                   from_number=organization.twilio_from_number)  # fmt: skip
        except twilio.ProviderError as exc:
            # Never retried: a confirmation that may have reached Twilio must not go twice; staff see it failed.
            sid, state, error = (
                "",
                Confirmation.FAILED,
                f"{exc.code or exc.status or ''} {exc.message}".strip(),
            )
        else:
            sid, state, error = sent.sid, Confirmation.SENT, ""
    InboundReview.objects.filter(pk=review_id).update(
        confirmation=state, confirmation_sid=sid, confirmation_error=error[:200]
    )
    return str(state)


def inbound_reviews(*, organization: Organization, open_only: bool) -> QuerySet[InboundReview]:
    """The queue (``open_only``) or the decided items of ``organization``, newest first."""
    states = [ReviewState.OPEN] if open_only else [ReviewState.OPTED_OUT, ReviewState.DISMISSED]
    return (
        InboundReview.objects.filter(organization=organization, state__in=states)
        .select_related("decided_by")
        .prefetch_related("patients")
        .order_by("-received_at", "-pk")
    )


def inbound_review_open_count(*, organization: Organization) -> int:
    return InboundReview.objects.filter(organization=organization, state=ReviewState.OPEN).count()
