"""Offline US mailing-address check used when the PMS gives no address status (I1)."""

from __future__ import annotations

import re

from practices.models import AddressStatus
from practices.timezones import state_for_zip

US_STATES = frozenset(
    [
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "DC",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
        "AS",
        "GU",
        "MP",
        "PR",
        "VI",
        "AA",
        "AE",
        "AP",
    ]
)
_ZIP = re.compile(r"^\d{5}(-\d{4})?$")
# A delivery line: a house number then a street, or a PO box / rural route / highway contract box.
_STREET = re.compile(r"^\d+[A-Za-z]?(-\d+)?\s+\S+", re.ASCII)
_BOX = re.compile(r"^(P\.?\s*O\.?\s*BOX|POST\s+OFFICE\s+BOX|PMB|RR|R\.R\.|HC|RURAL\s+ROUTE)\s*\d*", re.I)


def address_status_for(*, line1: str, city: str, state: str, zip_code: str) -> str:
    """`invalid` when a part is missing or the parts do not form a US address; else `valid`."""
    if not (line1 and city and state and zip_code):
        return AddressStatus.INVALID
    if state.upper() not in US_STATES or not _ZIP.match(zip_code):
        return AddressStatus.INVALID
    if not (_STREET.match(line1) or _BOX.match(line1)):
        return AddressStatus.INVALID
    zip_state = state_for_zip(zip_code)
    if zip_state is None or zip_state != state.upper():
        return AddressStatus.INVALID
    return AddressStatus.VALID
