"""The message outbox (N1): create, claim, send, release held messages, sweep stuck ones.

A message is claimed by one worker only through a conditional UPDATE (``… WHERE state IN (pending,
scheduled)``); whoever updates the row owns the send. A message never goes to the provider twice: a crash
between the provider's acceptance and our update leaves it ``sending``, and the sweeper moves it to
``unknown`` for a person to check. Held messages are released by a periodic tick reading the database,
never by Celery eta/countdown (Redis re-delivers unacknowledged delayed tasks).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from typing import Any, TypedDict

from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from notifications.channels import ChannelError, channel_for
from notifications.frequency import ContactLog, look_back_days, parse_frequency_cap
from notifications.hourly_limit import SmsAllowance
from notifications.models import (
    ELECTRONIC,
    TRANSITIONS,
    Channel,
    Kind,
    Message,
    NotificationSettings,
    OptOut,
    OptOutSource,
    Reason,
    SmsHourCount,
    State,
)
from notifications.optouts import is_opted_out, opt_out_set
from notifications.paylinks import with_pay_url
from notifications.send_window import DEFAULT_QUIET, Hold, SendPolicy, next_send
from notifications.state_rules import StateRule, recipient_states, rules_for
from notifications.transactional import is_transactional
from payments.models import claims_over
from practices.models import BILL_ENDED_STATES, Organization, Patient, SmsConsent
from practices.timezones import candidate_zones, state_for_zip

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
STALE_SENDING_AFTER = timedelta(minutes=15)
LOST_PENDING_AFTER = timedelta(minutes=5)


def allowed_sources(target: str) -> list[str]:
    return [source for source, targets in TRANSITIONS.items() if target in targets]


def message_transition(
    *, message_id: int, to: str, from_states: Iterable[str] | None = None, **fields: Any
) -> bool:
    """Move a message to ``to`` if the state machine allows it from its current state; True if it moved.

    One conditional UPDATE: two workers or two webhook retries racing for the same move cannot both win.
    """
    sources = set(allowed_sources(to))
    if from_states is not None:
        sources &= set(from_states)
    updated = Message.objects.filter(pk=message_id, state__in=sources).update(
        state=to, updated_at=timezone.now(), **fields
    )
    return updated == 1


def send_policy(organization: Organization, *, cache: dict[int, SendPolicy] | None = None) -> SendPolicy:
    """The organization's sending settings: quiet hours (Q1), Sundays and holidays (K1), the frequency cap (K2),
    the hourly text limit (K5).
    ``cache``: organization id → policy, kept by a caller that handles many messages (a bulk send, a queued
    chunk) so that the settings are read once."""
    if cache is not None and organization.pk in cache:
        return cache[organization.pk]
    row = NotificationSettings.objects.filter(organization=organization).first()
    policy = (
        SendPolicy()
        if row is None
        else SendPolicy(
            quiet=(row.quiet_start, row.quiet_end),
            send_on_sundays=row.send_on_sundays,
            send_on_holidays=row.send_on_holidays,
            frequency_cap=parse_frequency_cap(row.frequency_cap or "none"),
            require_sms_consent=row.require_sms_consent,
            hourly_sms_limit=row.hourly_sms_limit,
        )
    )
    if cache is not None:
        cache[organization.pk] = policy
    return policy


def quiet_window(organization: Organization) -> tuple[time, time]:
    """The organization's quiet hours (Q1)."""
    return send_policy(organization).quiet if organization.pk else DEFAULT_QUIET


def recipient_zones(patient: Patient, *, destination: str = "") -> tuple[str, ...]:
    """Q3: the recipient's candidate zones, from the patient row alone (no query). A text to a number that is
    not the patient's own (a quick-added resend) takes that number's area code when the patient has none."""
    return candidate_zones(
        timezone=patient.timezone, source=patient.timezone_source, zip_code=patient.address_zip,
        phone=patient.mobile_phone or (destination if destination.startswith("+") else ""),
        organization_timezone=patient.organization.timezone,
    )  # fmt: skip


def recipient_rules(patient: Patient, channel: str) -> tuple[StateRule, ...]:
    """K1: the state rules that cover ``channel`` for this recipient (no query)."""
    states = recipient_states(
        address_state=patient.address_state, zip_state=state_for_zip(patient.address_zip) or "",
        phone=patient.mobile_phone, organization_state=patient.organization.return_address_state,
    )  # fmt: skip
    return rules_for(states, channel)


def release_time(message: Message, *, now: datetime, policy: SendPolicy) -> Hold:
    """Q1-Q3, K1: when ``message`` may go and what holds it until then; paper is never held."""
    if message.channel == Channel.PAPER:
        return Hold(at=now)
    patient = message.patient
    return next_send(
        now, zones=recipient_zones(patient, destination=message.destination),
        rules=recipient_rules(patient, message.channel), policy=policy,
    )  # fmt: skip


def initial_state(
    *,
    channel: str,
    has_destination: bool,
    now: datetime,
    policy: SendPolicy,
    zones: tuple[str, ...],
    rules: tuple[StateRule, ...],
    transactional: bool = False,
) -> tuple[str, str, datetime, str]:
    """(state, reason, scheduled_for, hold detail) of a new message: ``undelivered`` without a destination (U1),
    else ``scheduled`` while quiet hours, a state's hours, a Sunday or a holiday hold it in any of the recipient's
    candidate zones (Q1, Q3, K1; paper is never held), else ``pending``. The one rule behind ``messages_create``
    and the dunning engine's bulk writes; the frequency cap (K2) counts what was sent, so it is applied when the
    message is claimed. A ``transactional`` message (a receipt, ``notifications.transactional``) is never held."""
    if not has_destination:
        return State.UNDELIVERED, Reason.NO_DESTINATION, now, ""
    if channel == Channel.PAPER or transactional:
        return State.PENDING, "", now, ""
    hold = next_send(now, zones=zones, rules=rules, policy=policy)
    if hold.at > now:
        return State.SCHEDULED, hold.reason, hold.at, hold.detail
    return State.PENDING, "", now, ""


def messages_create(
    messages: Sequence[Message],
    *,
    now: datetime | None = None,
    policies: dict[int, SendPolicy] | None = None,
) -> list[Message]:
    """Save new messages (unsaved instances with recipient, channel, kind, body and destination set).

    Each gets its state here: ``undelivered`` (no destination), ``scheduled`` (quiet hours or another send-window
    rule in the recipient's zones, Q1/K1) or ``pending``; pending electronic messages are queued for sending once
    the transaction commits. Set-based: one INSERT, one enqueue per chunk of pending messages.

    ``policies``: see ``send_policy``."""
    moment = now or timezone.now()
    cache: dict[int, SendPolicy] = {} if policies is None else policies
    for message in messages:
        has_destination = bool(message.destination) or (
            message.channel == Channel.PAPER and bool(message.postal_address)
        )
        patient = message.patient
        message.state, reason, message.scheduled_for, message.hold_detail = initial_state(
            channel=message.channel, has_destination=has_destination, now=moment,
            policy=send_policy(message.organization, cache=cache),
            zones=recipient_zones(patient, destination=message.destination),
            rules=recipient_rules(patient, message.channel), transactional=is_transactional(message.kind),
        )  # fmt: skip
        if reason:
            message.reason = reason
    created = Message.objects.bulk_create(messages)
    messages_queue_on_commit([m.pk for m in created if m.state == State.PENDING and m.channel in ELECTRONIC])
    return created


def messages_queue_on_commit(message_ids: list[int]) -> None:
    """Queue ``message_ids`` for sending once the current transaction commits (never before: the worker
    must find the rows)."""
    if message_ids:
        transaction.on_commit(lambda: _enqueue(message_ids))


def message_create(message: Message, *, now: datetime | None = None) -> Message:
    return messages_create([message], now=now)[0]


# Messages per queued task when many go at once: a 100 000-letter day is 1 000 tasks, not 100 000 round
# trips to the broker, and a worker claims each message on its own anyway (N1).
ENQUEUE_CHUNK = 100


def _enqueue(message_ids: list[int]) -> None:
    from notifications.tasks import send_message, send_messages

    for start in range(0, len(message_ids), ENQUEUE_CHUNK):
        chunk = message_ids[start : start + ENQUEUE_CHUNK]
        if len(chunk) == 1:
            send_message.delay(chunk[0])
        else:
            # Celery's own repr of the ids (for monitoring) walks the list element by element, about a third
            # of the time a run's queueing takes (cProfile, 100 000 bills); the first and last ids and the
            # count serve monitoring as well.
            send_messages.apply_async((chunk,), argsrepr=f"([{chunk[0]}, …, {chunk[-1]}] {len(chunk)} ids,)")


def _recheck(message: Message, *, policy: SendPolicy) -> str:
    """N1: just before the provider, a message whose bill was paid or closed, or reset since it was decided
    (an older generation), or whose recipient opted out or is flagged do-not-contact (or deceased, §13.2), is
    cancelled; so is a text to a patient without SMS consent when the organization requires it (§13.2), unless
    staff recorded the patient's consent to that number with the resend. A ``completed`` bill's messages go:
    its final notice is the one that matters most (D11). Returns the reason, or '' when it may go."""
    bill = message.bill
    if bill is not None:
        if bill.state in BILL_ENDED_STATES:
            return Reason.BILL_NOT_ACTIVE
        if message.generation < bill.generation:
            return Reason.OLDER_GENERATION
    patient = message.patient
    if patient.deceased:
        return Reason.DECEASED
    if patient.do_not_contact:
        return Reason.DO_NOT_CONTACT
    if is_opted_out(
        patient=patient, channel=message.channel, address=message.destination,
        address_opted_out=getattr(message, "address_opted_out", None),
    ):  # fmt: skip
        return Reason.OPTED_OUT
    if (
        message.channel == Channel.SMS and policy.require_sms_consent and patient.sms_consent != SmsConsent.YES
        and message.consent_at is None
    ):  # fmt: skip
        return Reason.NO_SMS_CONSENT
    if bill is not None and message.kind in CLAIMS_CHECKED_KINDS and _claims_over(message):
        return Reason.CLAIMS_PENDING
    return ""


# K6 at send: the kinds the dunning engine writes. A payment request the front desk sends by hand (``request``)
# and a staff resend are not re-checked: R10 already showed the claims on the list the person chose from, and
# staff decided to send it (docs/decisions.md, "K6 at send").
CLAIMS_CHECKED_KINDS = frozenset(
    {Kind.STATEMENT, Kind.REMINDER, Kind.DUE, Kind.PAST_DUE, Kind.FINAL, Kind.BILL_UPDATE}
)


def _claims_over(message: Message) -> bool:
    """K6: the bill's guarantor has more open claims than the organization's ``max_open_claims`` (none: no
    limit). Both are read with the message in ``_sendable``'s one query (no query per message)."""
    try:
        limit = message.organization.payment_settings.max_open_claims
    except ObjectDoesNotExist:
        return False
    guarantor = message.bill.guarantor if message.bill is not None else None
    return guarantor is not None and claims_over(guarantor.open_claims, limit)


def message_send(
    *,
    message_id: int,
    now: datetime | None = None,
    policies: dict[int, SendPolicy] | None = None,
    prefetched: Message | None = None,
    contacts: ContactLog | None = None,
    allowance: SmsAllowance | None = None,
) -> str:
    """Claim ``message_id`` and hand it to its channel. Returns the state it ends in (or '' if not ours).

    Just before the provider the message is re-checked (N1) and its send window and contact counts checked again
    (Q1-Q3, K1, K2): a message that may not go yet goes back to ``scheduled`` with its reason.

    ``policies``: shared by the messages of one queued chunk (see ``send_policy``). ``prefetched``: the message as
    ``messages_send`` read it with its chunk (see there); None reads it here, after the claim. ``contacts``: the
    chunk's contact counts (``ContactLog.read``); None reads them here when a rule needs them. ``allowance``: the
    chunk's reserved texts under the hourly limit (K5, ``SmsAllowance.reserve``); None reserves here when one
    applies."""
    moment = now or timezone.now()
    if not _claim(message_id, moment):
        return ""  # another worker got there first, or it is not due, or it is paper
    message = prefetched if prefetched is not None else _sendable().get(pk=message_id)

    policy = send_policy(message.organization, cache=policies)
    reason = _recheck(message, policy=policy)
    if reason:
        with transaction.atomic():
            message_transition(message_id=message_id, to=State.CANCELLED, reason=reason)
            if reason == Reason.CLAIMS_PENDING:
                from dunning.engine.claims import decision_hold

                decision_hold(message, now=moment)
        return State.CANCELLED
    if contacts is None:
        contacts = _contacts([message], now=moment, policies={message.organization_id: policy})
    hold = _hold(message, now=moment, policy=policy, contacts=contacts)
    if hold.at > moment:
        message_transition(
            message_id=message_id, to=State.SCHEDULED, scheduled_for=hold.at, reason=hold.reason,
            hold_detail=hold.detail[:300],
        )  # fmt: skip
        return State.SCHEDULED
    if message.channel == Channel.SMS and policy.hourly_sms_limit is not None:
        own = allowance is None
        if allowance is None:
            allowance = SmsAllowance.reserve(
                [message], now=moment, limits={message.organization_id: policy.hourly_sms_limit}
            )
        try:
            if not allowance.take(message):
                message_transition(
                    message_id=message_id, to=State.SCHEDULED, scheduled_for=allowance.next_hour,
                    reason=Reason.HOURLY_LIMIT, hold_detail=allowance.detail(message)[:300],
                )  # fmt: skip
                return State.SCHEDULED
        finally:
            if own:
                allowance.close()
    contacts.add(message, moment)

    # The payment link goes into the text only now, for the provider; the stored body keeps PAY_URL (T4). It
    # names this message (``?m=``), so that opening it is credited to this message (V2).
    message.subject = with_pay_url(message.subject, message.context, message_id=message.pk)
    message.body = with_pay_url(message.body, message.context, message_id=message.pk)
    try:
        provider_id = channel_for(message.channel).send(message)
    except ChannelError as exc:
        return _send_failed(message, exc, moment)
    _mark_sent(message_id, provider_id, moment)
    return State.SENT


def _hold(message: Message, *, now: datetime, policy: SendPolicy, contacts: ContactLog) -> Hold:
    """The send window (Q1-Q3, K1) and the contact counts (K1 limits, K2 cap) together: the first instant both
    allow, named by the rule that held it longest. A transactional message (a receipt) goes now."""
    if is_transactional(message.kind):
        return Hold(at=now)
    rules = recipient_rules(message.patient, message.channel)
    at, named, longest = now, Hold(at=now), timedelta(0)
    for _ in range(8):  # each round only moves forward; a cap that fits stays fitting
        window = release_time(message, now=at, policy=policy)
        capped = contacts.hold(message, now=window.at, cap=policy.frequency_cap, rules=rules)
        step = max(
            (h for h in (window, capped) if h is not None and h.at > at), key=lambda h: h.at, default=None
        )
        if step is None:
            break
        if step.at - at > longest:
            longest, named = step.at - at, Hold(at=step.at, reason=step.reason, detail=step.detail)
        at = step.at
    return Hold(at=at, reason=named.reason, detail=named.detail) if at > now else Hold(at=now)


def _contacts(messages: Sequence[Message], *, now: datetime, policies: dict[int, SendPolicy]) -> ContactLog:
    """The contact counts a chunk needs (two queries), or an empty log when no cap or state limit applies."""
    rules = [rule for m in messages for rule in recipient_rules(m.patient, m.channel)]
    caps = {policies[m.organization_id].frequency_cap for m in messages}
    days = max((look_back_days(cap, rules) for cap in caps), default=0)
    return ContactLog.read(messages, now=now, days=days)


def messages_send(message_ids: Sequence[int], *, now: datetime | None = None) -> list[str]:
    """Send a chunk queued at once (a bulk send, a dunning run), each message claimed on its own (N1).

    The chunk's messages are read in one query before the first claim, with what the pre-send re-check
    needs (the bill's state, the patient's flags, the opt-out at the destination), and their contact counts in
    two more when a frequency cap or a state limit applies (K1, K2): reading them one by one cost more than
    sending them. What changes in between is still caught: a STOP or a closed campaign cancels the pending
    messages, and a cancelled message cannot be claimed; the chunk's own sends are counted as they go."""
    moment = now or timezone.now()
    messages = _sendable().in_bulk(list(message_ids))
    policies: dict[int, SendPolicy] = {}
    for prefetched in messages.values():
        send_policy(prefetched.organization, cache=policies)
    contacts = _contacts(list(messages.values()), now=moment, policies=policies)
    # K5: the chunk's texts under an hourly limit take their slots at once, in the order they were queued.
    allowance = SmsAllowance.reserve(
        [messages[pk] for pk in message_ids if pk in messages], now=moment,
        limits={pk: policy.hourly_sms_limit for pk, policy in policies.items()},
    )  # fmt: skip
    states = []
    try:
        for message_id in message_ids:
            message = messages.get(message_id)
            if message is None:
                continue  # deleted since it was queued
            state = message_send(
                message_id=message_id, now=now, policies=policies, prefetched=message, contacts=contacts,
                allowance=allowance,
            )  # fmt: skip
            states.append(state)
    finally:
        allowance.close()
    return states


def _sendable() -> QuerySet[Message]:
    # The opt-out re-check (N1) is read with the message, in the same query.
    opted_out = OptOut.objects.filter(
        organization_id=OuterRef("patient__organization_id"), channel=OuterRef("channel"),
        address=OuterRef("destination"), active=True,
    )  # fmt: skip
    return Message.objects.select_related(
        "organization__payment_settings", "patient__organization", "bill__guarantor"
    ).annotate(address_opted_out=Exists(opted_out))


# The two writes every sent message makes, as plain SQL: building them through the ORM cost a third of a
# worker's time per message (SPEC §11 send pipeline). They are the same conditional UPDATEs as
# ``message_transition`` with the sources of N1 spelled out.
_CLAIM = (
    "UPDATE notifications_message SET state = %s, sending_started_at = %s, updated_at = %s, reason = '', "
    "hold_detail = '' "
    "WHERE id = %s AND state IN (%s, %s) AND (scheduled_for IS NULL OR scheduled_for <= %s) AND channel <> %s"
)
_SENT = (
    "UPDATE notifications_message SET state = %s, updated_at = %s, provider_id = %s, sent_at = %s, "
    "attempts = attempts + 1 WHERE id = %s AND state = %s"
)


def _claim(message_id: int, moment: datetime) -> bool:
    """N1: ``pending``/``scheduled`` and due → ``sending``; whoever updates the row sends it."""
    at = connection.ops.adapt_datetimefield_value(moment)
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM, [State.SENDING, at, at, message_id, State.PENDING, State.SCHEDULED, at, Channel.PAPER]
        )
        return cursor.rowcount == 1


def _mark_sent(message_id: int, provider_id: str, moment: datetime) -> None:
    """``sending`` → ``sent``. Committed without waiting for the disk on PostgreSQL: the claim before the send
    is durable, so if the server crashes before this reaches the disk the message is found ``sending`` and the
    sweeper moves it to ``unknown`` for review (N1); it is never sent twice."""
    at = connection.ops.adapt_datetimefield_value(moment)
    params = [State.SENT, at, provider_id, at, message_id, State.SENDING]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One round trip: the two statements of one query string run as one implicit transaction (or
            # inside the caller's), and SET LOCAL holds for it alone. This relies on client-side binding,
            # Django's default with psycopg 3 (no ``server_side_binding``).
            cursor.execute(f"SET LOCAL synchronous_commit = off; {_SENT}", params)
        else:
            cursor.execute(_SENT, params)


class _SendError(TypedDict):
    error_code: str
    error_message: str
    attempts: int


def _send_failed(message: Message, exc: ChannelError, moment: datetime) -> str:
    attempts = message.attempts + 1
    error = _SendError(error_code=exc.code[:20], error_message=exc.message[:500], attempts=attempts)
    if exc.maybe_sent:
        # The provider may have accepted it: leave it `sending`; the sweeper moves it to `unknown` (N1).
        Message.objects.filter(pk=message.pk).update(**error)
        return State.SENDING
    if exc.opted_out:
        opt_out_set(
            organization=message.organization, channel=message.channel, address=message.destination, active=True,
            source=OptOutSource.PROVIDER_ERROR, at=moment,
        )  # fmt: skip
        message_transition(message_id=message.pk, to=State.CANCELLED, reason=Reason.OPTED_OUT, **error)
        return State.CANCELLED
    if exc.permanent:
        target = State.UNDELIVERED if exc.undeliverable else State.FAILED
        message_transition(
            message_id=message.pk, to=target, reason=exc.reason or Reason.PROVIDER_FAILED, **error
        )
        return target
    if attempts >= MAX_ATTEMPTS:
        message_transition(message_id=message.pk, to=State.FAILED, reason=Reason.RETRIES_EXHAUSTED, **error)
        return State.FAILED
    retry_at = moment + timedelta(minutes=2**attempts)
    message_transition(message_id=message.pk, to=State.SCHEDULED, scheduled_for=retry_at, **error)
    return State.SCHEDULED


def messages_release_due(*, now: datetime | None = None, limit: int = 5000) -> int:
    """The periodic tick: queue every held message whose time has come, and any pending one whose queue
    entry was lost (older than a few minutes). Sending claims each row, so queuing twice is harmless."""
    moment = now or timezone.now()
    due = list(
        Message.objects.filter(state=State.SCHEDULED, scheduled_for__lte=moment)
        .exclude(channel=Channel.PAPER)
        .order_by(
            "scheduled_for", "pk"
        )  # the texts the hourly limit (K5) held go in the order they were queued
        .values_list("pk", flat=True)[:limit]
    )
    lost = list(
        Message.objects.filter(
            state=State.PENDING, channel__in=ELECTRONIC, created_at__lte=moment - LOST_PENDING_AFTER
        ).values_list("pk", flat=True)[:limit]
    )
    ids = due + lost
    if ids:
        _enqueue(ids)
    return len(ids)


# What ``send_due`` reports (SPEC §10), by the state a send attempt ended in. A message the provider may have
# taken without answering stays ``sending`` (the sweeper moves it to ``unknown``): it is not counted as sent.
_SEND_DUE_COUNTS: dict[str, str] = {
    State.SENT: "sent",
    State.CANCELLED: "cancelled",
    State.FAILED: "failed",
    State.SENDING: "failed",
    State.UNDELIVERED: "undelivered",
}


def messages_send_due(
    *, organization: Organization | None = None, now: datetime | None = None
) -> dict[str, int]:
    """The outbox tick's work, now, in this process (``send_due``): every electronic message that is due
    (pending, or held with its time come) is claimed, re-checked and sent through its channel, exactly as a
    worker would (N1: a message a worker claims first is not sent twice). Paper waits for the letter batch.

    Returns ``{"sent", "held", "cancelled", "failed", "undelivered"}``: the outcomes of this pass, where
    ``held`` counts every message still waiting afterwards (quiet hours, a retry after a transient error)."""
    moment = now or timezone.now()
    messages = Message.objects.filter(channel__in=ELECTRONIC)
    if organization is not None:
        messages = messages.filter(organization=organization)
    due = list(
        messages.filter(Q(state=State.PENDING) | Q(state=State.SCHEDULED, scheduled_for__lte=moment))
        .order_by("scheduled_for", "pk")
        .values_list("pk", flat=True)
    )
    counts = dict.fromkeys(("sent", "held", "cancelled", "failed", "undelivered"), 0)
    for start in range(0, len(due), ENQUEUE_CHUNK):
        for state in messages_send(due[start : start + ENQUEUE_CHUNK], now=moment):
            key = _SEND_DUE_COUNTS.get(state)
            if key is not None:
                counts[key] += 1
    counts["held"] = messages.filter(state=State.SCHEDULED).count()
    return counts


def messages_sweep_stale(*, now: datetime | None = None) -> int:
    """Move electronic messages stuck in ``sending`` to ``unknown`` for review, never back to pending."""
    moment = now or timezone.now()
    # K5's hourly counts are read for the current hour only; a day of them is kept for a person to look at.
    SmsHourCount.objects.filter(hour__lt=moment - timedelta(days=1)).delete()
    return Message.objects.filter(
        state=State.SENDING, sending_started_at__lt=moment - STALE_SENDING_AFTER, channel__in=ELECTRONIC
    ).update(state=State.UNKNOWN, reason=Reason.STALE_SENDING, updated_at=moment)
