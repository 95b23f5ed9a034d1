"""US mailing addresses as a PMS holds them (I1, I1a): the offline address check used when the PMS gives
no address status, and the repairs of what people type into a PMS (a state in full, a ZIP+4 without its
dash, a ZIP whose leading zero a spreadsheet dropped).

Forms follow USPS Publication 28 (Postal Addressing Standards): state and territory codes (Appendix B),
rural route and highway contract boxes (§24), PO boxes (§28), General Delivery (§27), military APO/FPO/DPO
with the "states" AA/AE/AP (§225), Puerto Rico urbanizations (§29); grid addresses (``N1234 County Rd K``,
Wisconsin and Utah county grids) and named buildings on their own line (§23: "One Gateway Plaza").
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

import zipcodes

from practices.models import AddressStatus
from practices.timezones import state_for_zip

# USPS Publication 28, Appendix B: the states, DC, the territories and the armed forces "states".
STATE_NAMES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California", "CO": "Colorado",
    "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York", "NC": "North Carolina",
    "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas",
    "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin",
    "WY": "Wyoming", "AS": "American Samoa", "GU": "Guam", "MP": "Northern Mariana Islands", "PR": "Puerto Rico",
    "VI": "Virgin Islands", "AA": "Armed Forces Americas", "AE": "Armed Forces Europe", "AP": "Armed Forces Pacific",
}  # fmt: skip
US_STATES = frozenset(STATE_NAMES)
MILITARY_STATES = frozenset({"AA", "AE", "AP"})

# Other spellings seen in practice data: the AP Stylebook's abbreviations (what people were taught to write
# on envelopes before the two-letter codes), and the common variants of DC and the territories.
_OTHER_SPELLINGS: dict[str, str] = {
    "ala": "AL", "ariz": "AZ", "ark": "AR", "calif": "CA", "cal": "CA", "colo": "CO", "conn": "CT", "del": "DE",
    "fla": "FL", "ga": "GA", "ill": "IL", "ind": "IN", "kan": "KS", "kans": "KS", "ky": "KY", "la": "LA",
    "md": "MD", "mass": "MA", "mich": "MI", "minn": "MN", "miss": "MS", "mo": "MO", "mont": "MT", "neb": "NE",
    "nebr": "NE", "nev": "NV", "nh": "NH", "nj": "NJ", "nm": "NM", "ny": "NY", "nc": "NC", "nd": "ND",
    "okla": "OK", "ore": "OR", "oreg": "OR", "pa": "PA", "penn": "PA", "penna": "PA", "ri": "RI", "sc": "SC",
    "sd": "SD", "tenn": "TN", "tex": "TX", "vt": "VT", "va": "VA", "wash": "WA", "wva": "WV", "w va": "WV",
    "wis": "WI", "wisc": "WI", "wyo": "WY", "dc": "DC", "washington dc": "DC", "washington d c": "DC",
    "district of columbia": "DC", "us virgin islands": "VI", "virgin islands of the us": "VI",
    "commonwealth of puerto rico": "PR", "northern mariana is": "MP", "cnmi": "MP",
}  # fmt: skip
_STATE_BY_NAME: dict[str, str] = {
    **{name.lower(): code for code, name in STATE_NAMES.items()},
    **{code.lower(): code for code in STATE_NAMES},
    **_OTHER_SPELLINGS,
}
_STATE_NOISE = re.compile(r"[.\s]+")


def state_code(raw: str) -> str | None:
    """The USPS code of a state as typed (``Utah``, ``utah``, ``N.Y.``, ``D.C.``, ``ut``); None when it names
    no state."""
    if len(raw) == 2 and raw in US_STATES:  # the usual case, first
        return raw
    key = _STATE_NOISE.sub(" ", raw.replace(".", " ").lower()).strip()
    if key in _STATE_BY_NAME:
        return _STATE_BY_NAME[key]
    # "N Y", "D C", "W Va": initials written with periods.
    return _STATE_BY_NAME.get(key.replace(" ", ""))


_ZIP = re.compile(r"^\d{5}(-\d{4})?$")
_ZIP9 = re.compile(r"^(\d{5})\s*(\d{4})$")  # ZIP+4 without its dash, or with a space
_ZIP_DROPPED_ZERO = re.compile(
    r"^(\d{4})(?:-?(\d{4}))?$"
)  # a New England ZIP read as a number: 2134, 21341234


@functools.cache
def _states_with_zero_zips() -> frozenset[str]:
    # CT, MA, ME, NH, NJ, RI, VT, PR, VI, the armed forces in Europe (AE) and NY (Holtsville's 00501).
    return frozenset(z["state"] for z in zipcodes.list_all() if z["zip_code"].startswith("0"))


class ZipRepair(NamedTuple):
    zip_code: str
    note: str  # '' when the ZIP was taken as given


def zip_repaired(raw: str, *, state: str) -> ZipRepair:
    """I1a: ``841011234`` is ZIP+4 ``84101-1234``; a 4-digit ZIP (or 8 with a +4) in a state whose ZIPs
    start with 0 has lost that zero to a spreadsheet (``2134`` in MA is Boston's ``02134``)."""
    if _ZIP.match(raw):
        return ZipRepair(raw, "")
    if match := _ZIP9.match(raw):
        return ZipRepair(f"{match[1]}-{match[2]}", "ZIP+4 without its dash")
    if (match := _ZIP_DROPPED_ZERO.match(raw)) and state in _states_with_zero_zips():
        fixed = f"0{match[1]}" + (f"-{match[2]}" if match[2] else "")
        return ZipRepair(fixed, f"a ZIP in {state} that lost its leading zero")
    return ZipRepair(raw, "")


# A delivery line (Publication 28): a house number then a street, with a fraction or a hyphenated number
# (Queens: 123-45 Main St) or a letter (12B); a grid address (N1234 County Rd K, W12345 State Hwy 29); a
# house number spelled out (One Gateway Plaza, §23); the boxes: PO box, private mailbox, rural route,
# highway contract, and the military unit/PSC/CMR boxes (§225); General Delivery (§27). A Puerto Rico
# urbanization (URB Las Gladiolas, §29) or a building name sits on a line of its own, beside the delivery line.
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    "seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred"
)
_DELIVERY = re.compile(
    r"^(?:"
    r"\d+[A-Z]?(?:[-/]\d+[A-Z]?)?(?:\s+\d/\d)?\s+\S"  # 12 Main St, 12B Oak Ave, 123-45 Main St, 12 1/2 Elm St
    r"|[NSEW]\d+[A-Z]?\s+\S"  # N1234 County Rd K
    rf"|(?:{_NUMBER_WORDS})(?:[-\s](?:{_NUMBER_WORDS}))*\s+\S"  # One Gateway Plaza
    r"|P\.?\s*O\.?\s*BOX\s*\S|POST\s+OFFICE\s+BOX\s*\S|BOX\s+\d|PMB\s*\d|CALLER\s+\d"
    r"|(?:RR|R\.\s*R\.|RFD|RURAL\s+(?:ROUTE|RTE|RT)|HC|H\.\s*C\.|HCR|HIGHWAY\s+CONTRACT(?:\s+ROUTE)?)\s*\d+"
    r"|(?:PSC|CMR|UNIT)\s*\d+"
    r"|USNS\s|USS\s|USCGC\s"  # a ship (FPO)
    r"|GENERAL\s+DELIVERY\b"
    r")",
    re.IGNORECASE | re.ASCII,
)
_MILITARY_CITIES = frozenset({"APO", "FPO", "DPO"})


def is_delivery_line(line: str) -> bool:
    return bool(_DELIVERY.match(line))


def address_status_for(*, line1: str, city: str, state: str, zip_code: str, line2: str = "") -> str:
    """`invalid` when a part is missing or the parts do not form a US address; else `valid`.

    The delivery line may be line1 or line2 (a named building, a care-of or an urbanization on line1 and
    the street on line2). A military address has APO, FPO or DPO for a city and AA, AE or AP for a state."""
    if not (line1 and city and state and zip_code):
        return AddressStatus.INVALID
    state = state.upper()
    if state not in US_STATES or not _ZIP.match(zip_code):
        return AddressStatus.INVALID
    if not (is_delivery_line(line1) or (line2 and is_delivery_line(line2))):
        return AddressStatus.INVALID
    if (state in MILITARY_STATES) != (city.upper().replace(".", "") in _MILITARY_CITIES):
        return AddressStatus.INVALID
    zip_state = state_for_zip(zip_code)
    if zip_state is None or zip_state != state:
        return AddressStatus.INVALID
    return AddressStatus.VALID
