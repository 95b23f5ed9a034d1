"""K5: ``hourly_sms_limit``, an organization's texts per clock hour (its carrier registration's throughput).

A clock hour (UTC, which is every US zone's local hour) rather than a rolling one: the count is one row per
organization and hour (``SmsHourCount``), and a held text knows when it may go, the start of the next hour.

A chunk of messages (``messages_send``) reserves the slots its texts need in one short transaction: the row is
locked, what is left of the limit is granted, and the count moves by the grant. Two workers reserving at once
are serialised by the row lock, so between them they never take more than the limit; what a chunk does not use
(a text cancelled by the re-check or held by quiet hours) is given back when the chunk ends. A text that finds no
slot is held (``scheduled``, reason ``hourly_limit``) to the next hour and released there in the order it was
queued. With the limit unset nothing here runs: no query is added to the send path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest

from notifications.models import OPEN_STATES, Channel, Message, SmsHourCount
from practices.org_settings import SettingError

LIMIT_FORM = "an integer from 1 (texts per clock hour for the organization), or none"


def parse_hourly_sms_limit(raw: str) -> int | None:
    """``none`` or a whole number from 1; anything else is refused with the expected form."""
    if raw == "none":
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1 or len(raw) > 9:
        raise SettingError(f"expected {LIMIT_FORM}; got {raw!r}")
    return int(raw)


def hour_of(moment: datetime) -> datetime:
    """The start of ``moment``'s clock hour in UTC."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def sms_slots_reserve(*, organization_id: int, hour: datetime, wanted: int, limit: int) -> int:
    """Take up to ``wanted`` of what is left of ``limit`` for ``hour``; returns how many were granted."""
    if wanted <= 0:
        return 0
    with transaction.atomic():
        SmsHourCount.objects.bulk_create(
            [SmsHourCount(organization_id=organization_id, hour=hour, count=0)], ignore_conflicts=True
        )
        # The lock serialises the workers of one organization for the length of this read and update.
        row = SmsHourCount.objects.select_for_update().get(organization_id=organization_id, hour=hour)
        granted = max(0, min(wanted, limit - row.count))
        if granted:
            SmsHourCount.objects.filter(pk=row.pk).update(count=F("count") + granted)
    return granted


def sms_slots_return(*, organization_id: int, hour: datetime, unused: int) -> None:
    """Give back slots reserved and not used."""
    if unused > 0:
        SmsHourCount.objects.filter(organization_id=organization_id, hour=hour).update(
            count=Greatest(F("count") - unused, 0)
        )


@dataclass
class SmsAllowance:
    """The slots a chunk reserved, per organization with a limit; ``take`` spends one, ``close`` gives back the
    rest. Organizations without a limit are not in ``limits``: their texts always go."""

    hour: datetime
    limits: dict[int, int] = field(default_factory=dict)
    left: dict[int, int] = field(default_factory=dict)

    @classmethod
    def reserve(
        cls, messages: Iterable[Message], *, now: datetime, limits: Mapping[int, int | None]
    ) -> SmsAllowance:
        """Reserve a slot for each text of ``messages`` that is due now (one transaction per organization with
        a limit; none without). ``limits``: organization id → its hourly_sms_limit."""
        allowance = cls(hour=hour_of(now))
        wanted: Counter[int] = Counter(
            m.organization_id
            for m in messages
            if m.channel == Channel.SMS
            and limits.get(m.organization_id) is not None
            and m.state in OPEN_STATES
            and (m.scheduled_for is None or m.scheduled_for <= now)
        )
        for organization_id, limit in limits.items():
            if limit is None:
                continue
            allowance.limits[organization_id] = limit
            allowance.left[organization_id] = sms_slots_reserve(
                organization_id=organization_id,
                hour=allowance.hour,
                wanted=wanted[organization_id],
                limit=limit,
            )
        return allowance

    @property
    def next_hour(self) -> datetime:
        return self.hour + timedelta(hours=1)

    def limited(self, message: Message) -> bool:
        return message.channel == Channel.SMS and message.organization_id in self.limits

    def take(self, message: Message) -> bool:
        """True when ``message`` may go now (a slot spent, or no limit applies)."""
        if not self.limited(message):
            return True
        if self.left.get(message.organization_id, 0) <= 0:
            return False
        self.left[message.organization_id] -= 1
        return True

    def detail(self, message: Message) -> str:
        limit = self.limits[message.organization_id]
        return f"{limit} texts sent this hour (limit {limit} an hour); goes in the next hour, in order"

    def close(self) -> None:
        """Give back every slot not spent."""
        for organization_id, unused in self.left.items():
            sms_slots_return(organization_id=organization_id, hour=self.hour, unused=unused)
        self.left = dict.fromkeys(self.left, 0)
