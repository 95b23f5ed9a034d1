"""K1: the shipped table of state rules that tighten quiet hours (Q1) where a state's law reaches a creditor
collecting its own balances. Data, versioned: a change of a row is a new ``STATE_RULES_VERSION``.

Quiet hours stay the floor: a row adds a window (the hours the state allows, in the debtor's time, checked in every
candidate zone of the recipient, Q3) and/or a limit (at most ``limit_count`` messages on the row's channels in any
``limit_days`` days, per guarantor), for the channels it covers. Letters are never timed (Q1): no row covers paper.
Which states apply to a recipient: the state of the mailing address (or of its ZIP) and the state of the mobile
number's area code, both (a patient may live away from the number's state); the practice's own state when
neither is known. The legal reading behind each row is in docs/decisions.md, marked for counsel's review.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import time

import phonenumbers
from phonenumbers import geocoder

from notifications.models import Channel

STATE_RULES_VERSION = "2026-12-03.1"


@dataclass(frozen=True)
class StateRule:
    state: str
    name: str
    channels: tuple[str, ...]
    # The hours the state allows, in the debtor's local time: [start, end). None: quiet hours alone.
    window: tuple[time, time] | None
    # At most ``count`` messages on ``channels`` in any ``days`` days, per guarantor. None: no limit.
    limit: tuple[int, int] | None
    citation: str
    url: str
    note: str = ""

    @property
    def window_text(self) -> str:
        return "—" if self.window is None else f"{self.window[0]:%H:%M}–{self.window[1]:%H:%M} debtor's time"

    @property
    def limit_text(self) -> str:
        return "—" if self.limit is None else f"{self.limit[0]} in {self.limit[1]} days"

    def detail(self) -> str:
        """What a message held by this row shows staff (Message.hold_detail)."""
        parts = [self.name]
        if self.window is not None:
            parts.append(self.window_text)
        if self.limit is not None:
            parts.append(f"at most {self.limit_text}")
        return f"{', '.join(parts)} ({self.citation}; rules {STATE_RULES_VERSION})"


EIGHT_TO_NINE = (time(8), time(21))

STATE_RULES: tuple[StateRule, ...] = (
    StateRule(
        state="FL",
        name="Florida",
        channels=(Channel.SMS,),
        window=EIGHT_TO_NINE,
        limit=None,
        citation="Fla. Stat. § 559.72(17), as amended by CS/CS/SB 232 (2025)",
        url="https://www.flsenate.gov/Laws/Statutes/2025/559.72",
        note="The FCCPA reaches any person collecting a consumer debt, original creditors included. No "
        "communication 21:00–08:00 in the debtor's time zone without prior consent; SB 232, signed 2025-05-16 "
        "and in force at once, exempts e-mail. Texts (and calls) are covered.",
    ),
    StateRule(
        state="MA",
        name="Massachusetts",
        channels=(Channel.SMS,),
        window=None,
        limit=(2, 7),
        citation="940 CMR 7.04(1)(f)",
        url="https://regulations.justia.com/states/massachusetts/940-cmr/title-940-cmr-7-00/section-7-04",
        note="The Attorney General's debt collection regulations bind creditors: no more than two "
        "communications initiated by telephone, text messaging included, in each seven-day period to the "
        "debtor's residence or cellular telephone (per debt; counted here per guarantor, which is stricter).",
    ),
    StateRule(
        state="CA",
        name="California",
        channels=(Channel.SMS, Channel.EMAIL),
        window=EIGHT_TO_NINE,
        limit=None,
        citation="Cal. Civ. Code §§ 1788.2(c), 1788.17 (15 U.S.C. § 1692c(a)(1))",
        url="https://leginfo.legislature.ca.gov/faces/codes_displaySection.xhtml?lawCode=CIV&sectionNum=1788.17",
        note="The Rosenthal Act's 'debt collector' includes a person collecting its own debts; § 1788.17 "
        "applies the FDCPA's § 1692c, whose convenient time is after 08:00 and before 21:00 at the "
        "consumer's location. Whether a practice's balance is 'consumer credit' is for counsel.",
    ),
    StateRule(
        state="PA",
        name="Pennsylvania",
        channels=(Channel.SMS, Channel.EMAIL),
        window=EIGHT_TO_NINE,
        limit=None,
        citation="73 P.S. § 2270.4(b)(2)(i) (Fair Credit Extension Uniformity Act)",
        url="https://www.legis.state.pa.us/cfdocs/legis/LI/uconsCheck.cfm?txtType=HTM&yr=2000&sessInd=0&smthLwInd=0&act=7",
        note="§ 2270.4(b) binds creditors collecting in the Commonwealth: no communication at an unusual "
        "time; absent knowledge otherwise, the convenient time is after 08:00 and before 21:00 local time "
        "at the consumer's location. 'Communication' is any medium.",
    ),
)

RULES_BY_STATE: dict[str, StateRule] = {rule.state: rule for rule in STATE_RULES}

# USPS codes by the names phonenumbers' geocoder gives NANP numbers ("Florida", or "San Francisco, CA").
_STATE_CODES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA", "Colorado": "CO",
    "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC", "Washington D.C.": "DC", "Florida": "FL",
    "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS",
    "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI",
    "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI",
    "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Puerto Rico": "PR", "Guam": "GU", "US Virgin Islands": "VI", "U.S. Virgin Islands": "VI",
}  # fmt: skip


def state_for_phone(e164: str) -> str:
    """The US state of a NANP number's area code, offline ('' when it names none, e.g. toll-free)."""
    if not e164.startswith("+1") or len(e164) != 12:
        return ""
    area = e164[2:5]
    state = _AREA_STATES.get(area)
    if state is None:
        # An area code lies in one state, so the geocoder (slow: it parses and reads its prefix data) is asked
        # once per area code, with the first number seen: a worker sees a number rarely, an area code often.
        state = _AREA_STATES[area] = _geocoded_state(e164)
    return state


_AREA_STATES: dict[str, str] = {}


def _geocoded_state(e164: str) -> str:
    try:
        number = phonenumbers.parse(e164, "US")
    except phonenumbers.NumberParseException:
        return ""
    where = geocoder.description_for_number(number, "en")
    if len(where) > 4 and where[-4:-2] == ", " and where[-2:].isupper():
        return where[-2:]
    return _STATE_CODES.get(where, "")


@functools.lru_cache(maxsize=65_536)
def recipient_states(
    *, address_state: str, zip_state: str, phone: str, organization_state: str
) -> tuple[str, ...]:
    """The states whose rules may apply to a recipient (see the module docstring), without duplicates."""
    states = [s for s in (address_state or zip_state, state_for_phone(phone)) if s]
    if not states and organization_state:
        states.append(organization_state)
    return tuple(dict.fromkeys(states))


def rules_for(states: tuple[str, ...], channel: str) -> tuple[StateRule, ...]:
    """The rows that cover ``channel`` in any of ``states``."""
    return tuple(
        rule
        for state in states
        if (rule := RULES_BY_STATE.get(state)) is not None and channel in rule.channels
    )
