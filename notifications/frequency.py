"""K2, and the state limits of K1: how many messages a guarantor and its household were sent lately.

A household is every guarantor of the organization reached at the same mobile number or email (SPEC §15). What
counts is what was sent: a message with ``sent_at`` in the window, or one in flight (``sending``, or ``unknown``
after a lost answer) since it was claimed, on any channel, letters included (a letter is sent when its batch is
mailed, in flight from the batch on). A message that would exceed the cap is held to the first instant it fits,
never dropped; a staff resend is counted but not held by the cap (a state's limit still holds it). A payment's
receipt is neither held nor counted (``notifications.transactional``).

``ContactLog.read`` reads the contacts of a whole chunk of messages in two queries (the households, then their
messages), and the chunk's own sends are added as they happen: the check adds no query per message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q
from django.db.models.functions import Coalesce

from notifications.models import Kind, Message, Reason, State
from notifications.state_rules import StateRule
from notifications.transactional import TRANSACTIONAL_KINDS
from practices.models import Patient
from practices.org_settings import SettingError

_CAP = re.compile(r"^([1-9]\d{0,3})/([1-9]\d{0,2})d$")
CAP_FORM = "N/Dd, e.g. 3/7d (at most 3 messages in any 7 days), or none"


@dataclass(frozen=True)
class FrequencyCap:
    count: int
    days: int

    def __str__(self) -> str:
        return f"{self.count}/{self.days}d"

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.days)


def parse_frequency_cap(raw: str) -> FrequencyCap | None:
    """``N/Dd`` (N from 1, D days from 1) or ``none``; anything else is refused with the expected form."""
    if raw == "none":
        return None
    match = _CAP.match(raw)
    if not match:
        raise SettingError(f"expected {CAP_FORM}; got {raw!r}")
    return FrequencyCap(count=int(match[1]), days=int(match[2]))


@dataclass(frozen=True)
class CapHold:
    at: datetime
    reason: str
    detail: str


@dataclass
class ContactLog:
    """The contacts of the guarantors (and households) of a chunk of messages since ``since``."""

    since: datetime
    # guarantor id -> [(when, channel)], oldest first
    contacts: dict[int, list[tuple[datetime, str]]] = field(default_factory=dict)
    # mobile number or email -> the guarantors reached there
    households: dict[str, set[int]] = field(default_factory=dict)

    @classmethod
    def read(cls, messages: Sequence[Message], *, now: datetime, days: int) -> ContactLog:
        """Two queries for the whole chunk; ``days`` is the longest look-back any rule needs."""
        since = now - timedelta(days=days)
        log = cls(since=since)
        if not messages or days <= 0:
            return log
        organizations = {m.organization_id for m in messages}
        keys = {key for m in messages for key in _keys(m)}
        phones = [k for k in keys if not _is_email(k)]
        emails = [k for k in keys if _is_email(k)]
        members: set[int] = {m.patient_id for m in messages}
        if phones or emails:
            for pk, phone, email in Patient.objects.filter(
                Q(mobile_phone__in=phones) | Q(email__in=emails),
                organization_id__in=organizations, is_guarantor=True,
            ).values_list("pk", "mobile_phone", "email"):  # fmt: skip
                members.add(pk)
                for key in (phone, email):
                    if key in keys:
                        log.households.setdefault(key, set()).add(pk)
        rows = (
            Message.objects.filter(patient_id__in=members)
            .exclude(kind__in=TRANSACTIONAL_KINDS)  # a receipt is no collection contact (H4)
            .filter(
                Q(sent_at__gt=since)
                | Q(
                    state__in=(State.SENDING, State.UNKNOWN),
                    sent_at__isnull=True,
                    sending_started_at__gt=since,
                )
            )
            .annotate(contact_at=Coalesce("sent_at", "sending_started_at"))
            .order_by("contact_at")
            .values_list("patient_id", "contact_at", "channel")
        )
        for patient_id, at, channel in rows:
            log.contacts.setdefault(patient_id, []).append((at, channel))
        return log

    def add(self, message: Message, at: datetime) -> None:
        """A message of the chunk was sent (or claimed): later ones count it (a receipt does not count)."""
        if message.kind in TRANSACTIONAL_KINDS:
            return
        self.contacts.setdefault(message.patient_id, []).append((at, message.channel))

    def household(self, message: Message) -> set[int]:
        ids = {message.patient_id}
        for key in _keys(message):
            ids |= self.households.get(key, set())
        return ids

    def _times(
        self, ids: Iterable[int], *, after: datetime, channels: tuple[str, ...] | None = None
    ) -> list[datetime]:
        return sorted(
            at
            for pk in ids
            for at, channel in self.contacts.get(pk, ())
            if at > after and (channels is None or channel in channels)
        )

    def hold(
        self, message: Message, *, now: datetime, cap: FrequencyCap | None, rules: tuple[StateRule, ...]
    ) -> CapHold | None:
        """None when ``message`` fits now; else the first instant it fits, with the reason."""
        holds: list[CapHold] = []
        if cap is not None and message.kind != Kind.RESEND:
            own = self._times([message.patient_id], after=now - cap.window)
            family = self._times(self.household(message), after=now - cap.window)
            if len(family) >= cap.count:
                at = family[len(family) - cap.count] + cap.window
                if len(own) >= cap.count:
                    detail = f"{len(own)} messages to this guarantor in {cap.days} days (cap {cap})"
                    holds.append(CapHold(at, Reason.FREQUENCY_CAP, detail))
                else:
                    detail = (
                        f"{len(family)} messages to this household (a shared number or email) in {cap.days} "
                        f"days (cap {cap})"
                    )
                    holds.append(CapHold(at, Reason.HOUSEHOLD_CAP, detail))
        for rule in rules:
            if rule.limit is None:
                continue
            count, days = rule.limit
            window = timedelta(days=days)
            times = self._times([message.patient_id], after=now - window, channels=rule.channels)
            if len(times) >= count:
                holds.append(CapHold(times[len(times) - count] + window, Reason.STATE_LIMIT, rule.detail()))
        return max(holds, key=lambda h: h.at) if holds else None


def look_back_days(cap: FrequencyCap | None, rules: Iterable[StateRule]) -> int:
    """The longest window any of these counts needs (0: nothing to count)."""
    days = [cap.days] if cap is not None else []
    days += [rule.limit[1] for rule in rules if rule.limit is not None]
    return max(days, default=0)


def _is_email(key: str) -> bool:
    return "@" in key


def _keys(message: Message) -> set[str]:
    patient = message.patient
    return {key for key in (patient.mobile_phone, patient.email, message.destination) if key}
