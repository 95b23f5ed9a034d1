"""Quiet hours (Q1-Q3): the next moment a message may go out in the recipient's own time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo


def in_quiet_hours(local: time, *, start: time, end: time) -> bool:
    """True when ``local`` falls in the window [start, end); a window may wrap midnight (21:00-08:00)."""
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def next_allowed_send(now: datetime, tz: tzinfo, *, start: time, end: time) -> datetime:
    """``now`` when it is outside the quiet window in ``tz``, else the end of that window, in UTC.

    The end is computed on the local calendar, so across a DST change 08:00 stays 08:00 local. A wall time
    that does not exist on a spring-forward day is shifted forward by zoneinfo's fold rules.
    """
    local = now.astimezone(tz)
    if not in_quiet_hours(local.time(), start=start, end=end):
        return now
    release_day = local.date()
    if start > end and local.time() >= start:
        release_day += timedelta(days=1)  # in the evening part of a window that wraps midnight
    release = datetime.combine(release_day, end, tzinfo=tz)
    # A non-existent local time (spring forward) normalises through UTC to the first valid instant.
    return release.astimezone(UTC)
