"""Known errors and blind spots of the offline zone data (Q3), corrected, each row with its source.

The offline data is ``zipcodes`` (one IANA zone per ZIP) and ``phonenumbers`` (zones per area-code prefix). A row
here replaces what that data says for its key with a **set** of candidate zones: one zone where the data is wrong
(the Navajo Nation's Tuba City keeps DST, ``zipcodes`` puts it on Phoenix time), several where the place is
uncertain (an area code that spans zones; a ZIP that spans a reservation border). A message goes only when it is
outside the quiet hours in every candidate zone (``notifications.send_window``). The first zone of a row is the one
stored on the patient and shown to staff; the set governs sending.

Sources (short names used in the rows):

- ``49 CFR 71``: US DOT, Standard Time Zone Boundaries, 49 CFR Part 71 (§ 71.5 eastern/central, § 71.7
  central/mountain, § 71.9 mountain/Pacific, § 71.12 Hawaii-Aleutian, § 71.14 Chamorro, § 71.3 Atlantic).
- ``tzdata``: IANA Time Zone Database, ``zone.tab`` / ``zone1970.tab`` comments ("America/Phoenix MST - AZ
  (except Navajo)", "America/Menominee Central - MI (Wisconsin border)", "America/Adak Alaska - western
  Aleutians") and ``backward`` ("Navajo" is a link to America/Denver).
- ``Navajo DST``: the Navajo Nation keeps daylight saving time (tribal resolution of 1968), the Hopi Reservation
  inside it does not (AP, "The US is springing forward to daylight saving. For Navajo and Hopi tribes, it's a time
  of confusion", March 2024; azcentral.com, 2016-03-12); US 160 in Tuba City is the border with Moenkopi (Hopi).
- ``NANPA``: the area code's service area (North American Numbering Plan Administrator); overlays share it.

Data, not code: change a row, bump ``ZONE_CORRECTIONS_VERSION``, and every recipient is re-derived at send time
(nothing stored needs migrating). Marked for counsel's and ops' review in docs/decisions.md.
"""

from __future__ import annotations

from dataclasses import dataclass

ZONE_CORRECTIONS_VERSION = "2026-12-03"

CHICAGO, NEW_YORK, DENVER, PHOENIX = (
    "America/Chicago",
    "America/New_York",
    "America/Denver",
    "America/Phoenix",
)
BOISE, LOS_ANGELES, DETROIT, MENOMINEE = (
    "America/Boise",
    "America/Los_Angeles",
    "America/Detroit",
    "America/Menominee",
)
ANCHORAGE, ADAK = "America/Anchorage", "America/Adak"


@dataclass(frozen=True)
class ZoneCorrection:
    kind: str  # "zip" or "area_code"
    key: str
    zones: tuple[str, ...]
    place: str
    source: str


def _zip(key: str, zones: tuple[str, ...], place: str, source: str) -> ZoneCorrection:
    return ZoneCorrection("zip", key, zones, place, source)


def _area(key: str, zones: tuple[str, ...], place: str, source: str) -> ZoneCorrection:
    return ZoneCorrection("area_code", key, zones, place, source)


_NAVAJO = "Navajo DST; tzdata (America/Phoenix: AZ except Navajo; Navajo -> America/Denver)"
_HOPI = "Navajo DST (the Hopi Reservation keeps standard time); tzdata America/Phoenix"

ZONE_CORRECTIONS: tuple[ZoneCorrection, ...] = (
    # --- Arizona: the Navajo Nation keeps DST, the Hopi Reservation and the rest of Arizona do not ----------
    # zipcodes puts Tuba City on Phoenix time; Moenkopi (Hopi) shares the ZIP across US 160: both.
    _zip("86045", (DENVER, PHOENIX), "Tuba City AZ (Navajo Nation) and Moenkopi (Hopi)", _NAVAJO),
    # Keams Canyon (Hopi agency) is mailed with Navajo chapters around it (Jeddito).
    _zip("86034", (PHOENIX, DENVER), "Keams Canyon AZ (Hopi) and Jeddito (Navajo)", _NAVAJO),
    # Hopi villages: standard time all year, although the Navajo Nation surrounds them (confirms zipcodes).
    _zip("86039", (PHOENIX,), "Kykotsmovi AZ (Hopi Reservation)", _HOPI),
    _zip("86042", (PHOENIX,), "Polacca AZ (Hopi Reservation)", _HOPI),
    _zip("86043", (PHOENIX,), "Second Mesa AZ (Hopi Reservation)", _HOPI),
    _zip("86030", (PHOENIX,), "Hotevilla AZ (Hopi Reservation)", _HOPI),
    # ZIPs of towns at the reservation's southern edge whose delivery area reaches into the Navajo Nation.
    _zip("86047", (PHOENIX, DENVER), "Winslow AZ, with Dilkon and other Navajo chapters", _NAVAJO),
    _zip("86502", (PHOENIX, DENVER), "Chambers AZ (reservation border)", _NAVAJO),
    _zip("86512", (PHOENIX, DENVER), "Sanders AZ (reservation border)", _NAVAJO),
    # --- Area codes that span zones: phonenumbers answers per prefix, but a mobile number keeps its prefix
    # wherever its owner lives, so the whole area code's set is the candidate set ------------------------
    _area("928", (PHOENIX, DENVER), "northern/western Arizona incl. the Navajo Nation", f"NANPA; {_NAVAJO}"),
    _area(
        "850",
        (CHICAGO, NEW_YORK),
        "Florida panhandle: Central west of the Apalachicola River",
        "49 CFR 71.5 (Florida); NANPA",
    ),
    _area("448", (CHICAGO, NEW_YORK), "Florida panhandle (overlay of 850)", "49 CFR 71.5 (Florida); NANPA"),
    _area(
        "270",
        (CHICAGO, NEW_YORK),
        "western Kentucky (Central) with Hardin, Taylor … (Eastern)",
        "49 CFR 71.5 (Kentucky); NANPA",
    ),
    _area("364", (CHICAGO, NEW_YORK), "western Kentucky (overlay of 270)", "49 CFR 71.5 (Kentucky); NANPA"),
    _area(
        "219",
        (CHICAGO, NEW_YORK),
        "NW Indiana: Lake, Porter, LaPorte, Jasper, Newton (Central), Pulaski (Eastern)",
        "49 CFR 71.5(b) (Indiana-Illinois); tzdata America/Indiana/Winamac; NANPA",
    ),
    _area(
        "574",
        (NEW_YORK, CHICAGO),
        "northern Indiana with Starke County (Central)",
        "49 CFR 71.5(b); tzdata America/Indiana/Knox; NANPA",
    ),
    _area(
        "812",
        (NEW_YORK, CHICAGO),
        "southern Indiana with Evansville and Perry County (Central)",
        "49 CFR 71.5; tzdata America/Indiana/Tell_City; NANPA",
    ),
    _area("930", (NEW_YORK, CHICAGO), "southern Indiana (overlay of 812)", "49 CFR 71.5; NANPA"),
    _area(
        "906",
        (DETROIT, MENOMINEE),
        "Michigan's Upper Peninsula: Gogebic, Iron, Dickinson, Menominee on Central",
        "49 CFR 71.5(a) (Minnesota-Michigan-Wisconsin); tzdata America/Menominee; NANPA",
    ),
    _area("701", (CHICAGO, DENVER), "North Dakota: the southwest on Mountain", "49 CFR 71.7; NANPA"),
    _area("605", (CHICAGO, DENVER), "South Dakota: the west on Mountain", "49 CFR 71.7; NANPA"),
    _area("208", (BOISE, LOS_ANGELES), "Idaho: the north (panhandle) on Pacific", "49 CFR 71.9; NANPA"),
    _area("986", (BOISE, LOS_ANGELES), "Idaho (overlay of 208)", "49 CFR 71.9; NANPA"),
    _area(
        "541",
        (LOS_ANGELES, BOISE),
        "Oregon outside Portland, with Malheur County on Mountain",
        "49 CFR 71.9; tzdata America/Boise (OR east); NANPA",
    ),
    _area("458", (LOS_ANGELES, BOISE), "Oregon (overlay of 541)", "49 CFR 71.9; NANPA"),
    _area(
        "907",
        (ANCHORAGE, ADAK),
        "Alaska, with the western Aleutians (Adak) on Hawaii-Aleutian time",
        "49 CFR 71.11, 71.12; tzdata America/Adak; NANPA (phonenumbers also lists Pacific/Honolulu for 907: wrong)",
    ),
    _area(
        "915", (DENVER,), "El Paso and Hudspeth counties TX, on Mountain time", "49 CFR 71.7 (Texas); NANPA"
    ),
    _area(
        "340",
        ("America/St_Thomas",),
        "US Virgin Islands: Atlantic time, no DST",
        "49 CFR 71.3; 15 U.S.C. 260a (exemption); phonenumbers answers Etc/Unknown for some 340 prefixes",
    ),
)


def corrections_by_key(kind: str) -> dict[str, tuple[str, ...]]:
    return {row.key: row.zones for row in ZONE_CORRECTIONS if row.kind == kind}
