"""When a message may go (Q1-Q3, K1): outside quiet hours, outside any state's restricted hours, not on a Sunday
or a US federal holiday when the organization says so, in **every** candidate zone of the recipient.

Pure functions: the policy and the recipient's zones and state rules come in, an instant and the reason that
held it come out. The outbox calls them when a message is created and again when it is claimed for sending.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from notifications.frequency import FrequencyCap
from notifications.models import Reason
from notifications.quiet_hours import in_quiet_hours, next_allowed_send
from notifications.state_rules import StateRule

DEFAULT_QUIET = (time(21), time(8))
# Bounds the search for an instant every candidate zone allows; a US candidate set (zones at most a few hours
# apart) agrees within two or three rounds, and a window that could never agree stops here (see next_send).
MAX_ROUNDS = 64
# Which reason a held message names when several rules held it (a Saturday-night message with Sundays off is
# held by quiet hours, then by the Sunday: the Sunday is the news).
REASON_ORDER = (Reason.HOLIDAY, Reason.SUNDAY, Reason.STATE_HOURS, Reason.QUIET_HOURS)


@dataclass(frozen=True)
class SendPolicy:
    """An organization's sending settings, read once per chunk of messages."""

    quiet: tuple[time, time] = DEFAULT_QUIET
    send_on_sundays: bool = True
    send_on_holidays: bool = True
    frequency_cap: FrequencyCap | None = None
    # §13.2: text only patients whose PMS records SMS consent (``sms_consent`` yes).
    require_sms_consent: bool = False
    # K5: texts per clock hour for the organization (None: no limit).
    hourly_sms_limit: int | None = None


@dataclass(frozen=True)
class Hold:
    """When a message may go and, when that is later than asked, why (a ``Reason``) and the detail shown."""

    at: datetime
    reason: str = ""
    detail: str = ""


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@functools.cache
def federal_holidays(year: int) -> frozenset[date]:
    """US federal holidays of ``year`` and the days they are observed on (the maintained ``holidays`` package)."""
    return frozenset(_holiday_names(year))


@functools.cache
def _holiday_names(year: int) -> dict[date, str]:
    import holidays  # only organizations that keep holidays free need it loaded

    return dict(holidays.country_holidays("US", years=year).items())


def _next_midnight(local: datetime, zone: ZoneInfo) -> datetime:
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


def _next_in_zone(
    moment: datetime,
    zone: ZoneInfo,
    *,
    rules: tuple[StateRule, ...],
    policy: SendPolicy,
    held: dict[str, str],
) -> datetime:
    """The first instant from ``moment`` that ``zone`` allows; each rule that moved it is added to ``held``."""
    for _ in range(MAX_ROUNDS):
        local = moment.astimezone(zone)
        day = local.date()
        if not policy.send_on_sundays and day.weekday() == 6:
            moment = _next_midnight(local, zone)
            held.setdefault(Reason.SUNDAY, "Sunday in the recipient's time zone (send on Sundays is off)")
            continue
        if not policy.send_on_holidays and day in federal_holidays(day.year):
            moment = _next_midnight(local, zone)
            name = _holiday_names(day.year).get(day, "a federal holiday")
            held.setdefault(Reason.HOLIDAY, f"{name} in the recipient's time zone (send on holidays is off)")
            continue
        start, end = policy.quiet
        if in_quiet_hours(local.time(), start=start, end=end):
            moment = next_allowed_send(moment, zone, start=start, end=end)
            held.setdefault(Reason.QUIET_HOURS, f"quiet hours {start:%H:%M}–{end:%H:%M} in {zone.key}")
            continue
        for rule in rules:
            if rule.window is None:
                continue
            # The state's allowed window [opens, closes) is quiet from closes to opens.
            opens, closes = rule.window
            if in_quiet_hours(local.time(), start=closes, end=opens):
                moment = next_allowed_send(moment, zone, start=closes, end=opens)
                held.setdefault(Reason.STATE_HOURS, rule.detail())
                break
        else:
            return moment
    return moment


def next_send(
    now: datetime, *, zones: tuple[str, ...], rules: tuple[StateRule, ...], policy: SendPolicy
) -> Hold:
    """The first instant from ``now`` that every candidate zone allows (Q3: released at the latest end of the
    window), and why it is later than ``now``.

    Each round moves to the latest of the zones' next allowed instants, until one instant suits them all. Should
    the zones never agree (a window too narrow for zones that far apart), the latest end found is returned."""
    if _whole_minutes(policy, rules) and _open_minute(
        now.replace(second=0, microsecond=0), zones, rules, policy
    ):
        return Hold(at=now)
    return _next_send(now, zones=zones, rules=rules, policy=policy)


def _next_send(
    now: datetime, *, zones: tuple[str, ...], rules: tuple[StateRule, ...], policy: SendPolicy
) -> Hold:
    held: dict[str, str] = {}
    moment = now
    for _ in range(MAX_ROUNDS):
        latest = moment
        for name in zones:
            latest = max(latest, _next_in_zone(moment, _zone(name), rules=rules, policy=policy, held=held))
        if latest == moment:
            break
        moment = latest
    if moment <= now:
        return Hold(at=now)
    reason = next(r for r in REASON_ORDER if r in held)
    return Hold(at=moment, reason=reason, detail=held[reason])


@functools.lru_cache(maxsize=4096)
def _open_minute(
    minute: datetime, zones: tuple[str, ...], rules: tuple[StateRule, ...], policy: SendPolicy
) -> bool:
    """Whether every rule allows the whole of this minute. Every boundary (a window's ends, midnight, a DST change)
    falls on a whole minute, so the answer at the minute's start holds for all of it: the messages of a chunk,
    which share a few zone sets, are checked once per minute and set instead of one by one."""
    return _next_send(minute, zones=zones, rules=rules, policy=policy).at == minute


def _whole_minutes(policy: SendPolicy, rules: tuple[StateRule, ...]) -> bool:
    times = [*policy.quiet, *(t for rule in rules if rule.window is not None for t in rule.window)]
    return all(t.second == 0 and t.microsecond == 0 for t in times)
