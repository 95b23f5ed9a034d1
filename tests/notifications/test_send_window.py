"""K1 and Q3 as pure rules (no database): ``next_send`` for a recipient's candidate zones and state rules.

One row per case with the reason asserted. Dates: 2026's DST nights are Sunday March 8 and Sunday November 1;
Independence Day 2026 falls on a Saturday and is observed on Friday July 3 (5 U.S.C. 6103, as the ``holidays``
package has it); Thanksgiving is Thursday November 26."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from notifications.frequency import FrequencyCap, parse_frequency_cap
from notifications.models import Channel, Reason
from notifications.send_window import SendPolicy, federal_holidays, next_send
from notifications.state_rules import (
    RULES_BY_STATE,
    STATE_RULES,
    recipient_states,
    rules_for,
    state_for_phone,
)
from practices.org_settings import SettingError

NY, CHI, DEN, PHX = (
    ZoneInfo(z) for z in ("America/New_York", "America/Chicago", "America/Denver", "America/Phoenix")
)
FL = rules_for(("FL",), Channel.SMS)
DEFAULT = SendPolicy()
NO_SUNDAYS = SendPolicy(send_on_sundays=False)
NO_HOLIDAYS = SendPolicy(send_on_holidays=False)
NARROW = SendPolicy(quiet=(time(22), time(7)))  # an organization that narrowed its quiet hours


def at(tz: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz).astimezone(UTC)


CASES = [
    # (case, now, zones, rules, policy, expected release, reason)
    ("daytime goes now", at(NY, 2026, 3, 9, 12), ("America/New_York",), (), DEFAULT, at(NY, 2026, 3, 9, 12), ""),
    ("22:00 waits for 08:00", at(NY, 2026, 3, 9, 22), ("America/New_York",), (), DEFAULT, at(NY, 2026, 3, 10, 8),
     Reason.QUIET_HOURS),
    ("spring forward: 08:00 EDT, not 08:00 EST", at(NY, 2026, 3, 7, 23), ("America/New_York",), (), DEFAULT,
     datetime(2026, 3, 8, 12, 0, tzinfo=UTC), Reason.QUIET_HOURS),
    ("fall back: 08:00 EST", at(NY, 2026, 10, 31, 23), ("America/New_York",), (), DEFAULT,
     datetime(2026, 11, 1, 13, 0, tzinfo=UTC), Reason.QUIET_HOURS),
    # Summer: Denver (Navajo) is an hour ahead of Phoenix. 21:30 in Denver is 20:30 in Phoenix: held.
    ("Navajo and Hopi: quiet in one zone holds it", at(DEN, 2026, 3, 9, 21, 30), ("America/Denver", "America/Phoenix"),
     (), DEFAULT, at(PHX, 2026, 3, 10, 8), Reason.QUIET_HOURS),  # the next morning, 08:00 in the later zone
    # 07:30 in Phoenix is 08:30 in Denver: the latest end of the window is Phoenix's 08:00.
    ("released at the latest end", at(PHX, 2026, 3, 10, 7, 30), ("America/Denver", "America/Phoenix"), (), DEFAULT,
     at(PHX, 2026, 3, 10, 8), Reason.QUIET_HOURS),
    ("850 at 07:30 Central is 08:30 Eastern: waits for Central", at(CHI, 2026, 11, 2, 7, 30),
     ("America/Chicago", "America/New_York"), (), DEFAULT, at(CHI, 2026, 11, 2, 8), Reason.QUIET_HOURS),
    ("Florida keeps 21:00 when the practice narrowed quiet hours", at(NY, 2026, 3, 9, 21, 30), ("America/New_York",),
     FL, NARROW, at(NY, 2026, 3, 10, 8), Reason.STATE_HOURS),
    ("Florida texts at 07:30 wait for 08:00", at(NY, 2026, 3, 10, 7, 30), ("America/New_York",), FL, NARROW,
     at(NY, 2026, 3, 10, 8), Reason.STATE_HOURS),
    ("outside Florida the narrowed hours apply", at(NY, 2026, 3, 9, 21, 30), ("America/New_York",), (), NARROW,
     at(NY, 2026, 3, 9, 21, 30), ""),
    ("Sunday off: Saturday night waits for Monday 08:00", at(NY, 2026, 3, 7, 22), ("America/New_York",), (),
     NO_SUNDAYS, at(NY, 2026, 3, 9, 8), Reason.SUNDAY),
    ("Sunday on: Sunday 08:00", at(NY, 2026, 3, 7, 22), ("America/New_York",), (), DEFAULT, at(NY, 2026, 3, 8, 8),
     Reason.QUIET_HOURS),
    # Monday 00:30 in New York is still Sunday 23:30 in Chicago: Sunday in one candidate zone holds it.
    ("Sunday in one candidate zone holds it", at(NY, 2026, 3, 9, 0, 30), ("America/New_York", "America/Chicago"), (),
     NO_SUNDAYS, at(CHI, 2026, 3, 9, 8), Reason.SUNDAY),
    ("observed Independence Day, then the holiday itself", at(NY, 2026, 7, 3, 10), ("America/New_York",), (),
     NO_HOLIDAYS, at(NY, 2026, 7, 5, 8), Reason.HOLIDAY),
    ("Thanksgiving", at(NY, 2026, 11, 26, 10), ("America/New_York",), (), NO_HOLIDAYS, at(NY, 2026, 11, 27, 8),
     Reason.HOLIDAY),
    ("holidays on: Thanksgiving goes", at(NY, 2026, 11, 26, 10), ("America/New_York",), (), DEFAULT,
     at(NY, 2026, 11, 26, 10), ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "now", "zones", "rules", "policy", "release", "reason"), CASES, ids=[c[0] for c in CASES]
)
def test_next_send(case, now, zones, rules, policy, release, reason):
    hold = next_send(now, zones=zones, rules=rules, policy=policy)
    assert (hold.at, hold.reason) == (release, reason), case
    assert bool(hold.detail) == bool(reason)


def test_federal_holidays_come_from_the_holidays_package_with_observed_days():
    days = federal_holidays(2026)
    assert {datetime(2026, 7, 3).date(), datetime(2026, 7, 4).date(), datetime(2026, 6, 19).date()} <= days
    assert datetime(2026, 7, 6).date() not in days


def test_a_held_holiday_message_names_the_holiday():
    hold = next_send(at(NY, 2026, 11, 26, 10), zones=("America/New_York",), rules=(), policy=NO_HOLIDAYS)
    assert "Thanksgiving" in hold.detail


def test_the_state_rules_table_is_versioned_data_with_a_citation_per_row():
    assert {rule.state for rule in STATE_RULES} == set(RULES_BY_STATE)
    for rule in STATE_RULES:
        assert rule.citation and rule.url.startswith("https://") and rule.channels
        assert rule.window is not None or rule.limit is not None
        assert Channel.PAPER not in rule.channels  # letters are never timed (Q1)
    # Florida exempts email since SB 232 (2025); Massachusetts limits texts to two in seven days.
    assert rules_for(("FL",), Channel.EMAIL) == ()
    assert RULES_BY_STATE["MA"].limit == (2, 7)


@pytest.mark.parametrize(
    ("address_state", "zip_state", "phone", "organization_state", "expected"),
    [
        ("GA", "", "+18505550143", "NY", ("GA", "FL")),  # lives in Georgia, a Florida number: both
        ("", "FL", "", "NY", ("FL",)),  # the ZIP's state when the address has none
        ("", "", "+16175550143", "NY", ("MA",)),
        ("", "", "+14155550143", "NY", ("CA",)),  # the geocoder says "San Francisco, CA"
        ("", "", "", "PA", ("PA",)),  # nothing known: the practice's own state
        ("", "", "+18005550143", "", ()),  # toll-free names no state
    ],
)
def test_the_states_whose_rules_apply(address_state, zip_state, phone, organization_state, expected):
    assert (
        recipient_states(
            address_state=address_state,
            zip_state=zip_state,
            phone=phone,
            organization_state=organization_state,
        )
        == expected
    )


def test_state_for_phone_is_offline():
    assert (state_for_phone("+13055550143"), state_for_phone("+442071838750")) == ("FL", "")


@pytest.mark.parametrize("raw", ["3/week", "3/7", "0/7d", "3/0d", "-1/7d", "3 / 7d", "", "7d", "none "])
def test_a_frequency_cap_in_another_form_is_refused_with_the_expected_form(raw):
    with pytest.raises(SettingError, match=r"expected N/Dd, e\.g\. 3/7d"):
        parse_frequency_cap(raw)


def test_frequency_cap_forms():
    assert parse_frequency_cap("3/7d") == FrequencyCap(3, 7)
    assert str(parse_frequency_cap("10/30d")) == "10/30d"
    assert parse_frequency_cap("none") is None


def test_the_last_second_before_quiet_hours_goes_and_the_first_second_of_them_waits():
    """next_send answers an allowed minute once for every message in it (a chunk shares its zone sets): the
    boundary second must still be exact."""
    last = datetime(2026, 3, 9, 20, 59, 59, 999999, tzinfo=NY).astimezone(UTC)
    first = datetime(2026, 3, 9, 21, 0, tzinfo=NY).astimezone(UTC)
    for _ in range(2):  # the second time from the memo
        assert next_send(last, zones=("America/New_York",), rules=(), policy=DEFAULT).at == last
        assert next_send(first, zones=("America/New_York",), rules=(), policy=DEFAULT).at == at(
            NY, 2026, 3, 10, 8
        )
    odd = SendPolicy(quiet=(time(21, 0, 30), time(8)))  # a time with seconds: no memo, still exact
    early = datetime(2026, 3, 9, 21, 0, 10, tzinfo=NY).astimezone(UTC)
    assert next_send(early, zones=("America/New_York",), rules=(), policy=odd).at == early
    late = datetime(2026, 3, 9, 21, 0, 40, tzinfo=NY).astimezone(UTC)
    assert next_send(late, zones=("America/New_York",), rules=(), policy=odd).reason == Reason.QUIET_HOURS
