"""Q3: the recipient's zone is the patient's own, else the ZIP's, else a single-zone area code's, else the org's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from practices.importer import feed_import
from practices.models import Patient
from practices.timezones import candidate_zones, derive_timezone, known_timezones, organization_today
from practices.zone_corrections import ZONE_CORRECTIONS
from tests.factories import OrganizationFactory, feed_patient


@pytest.mark.parametrize(
    ("explicit", "zip_code", "phone", "expected"),
    [
        ("America/Chicago", "84101", "+12125550100", ("America/Chicago", "feed")),
        ("", "85004", "+12125550100", ("America/Phoenix", "zip")),
        ("", "96813", "", ("Pacific/Honolulu", "zip")),
        ("", "", "+14155550100", ("America/Los_Angeles", "phone")),
        ("", "00000", "+12125550100", ("America/New_York", "phone")),
        # Alaska's 907 spans two zones: the first candidate is stored, the set governs sending (Q3).
        ("", "", "+19075550100", ("America/Anchorage", "phone")),
        ("", "", "", ("", "organization")),
    ],
)
def test_derive_timezone(explicit, zip_code, phone, expected):
    assert derive_timezone(explicit=explicit, zip_code=zip_code, phone=phone) == expected


@pytest.mark.django_db
def test_a_patient_without_clues_gets_the_organizations_zone(feed_bytes):
    org = OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    feed_import(raw=feed_bytes(patients=[feed_patient("P1", address={}, mobile_phone="")]))
    patient = Patient.objects.get()
    assert (patient.timezone, patient.timezone_source) == ("", "organization")
    assert patient.effective_timezone == "America/Denver"
    org.timezone = "America/Boise"
    org.save()
    assert Patient.objects.get().effective_timezone == "America/Boise"


@pytest.mark.django_db
def test_an_unknown_feed_timezone_is_ignored_with_a_warning(feed_bytes):
    OrganizationFactory.create(slug="smile-dental")
    summary = feed_import(raw=feed_bytes(patients=[feed_patient("P1", timezone="Mars/Olympus")]))
    assert summary.warnings == [
        {"pointer": "/patients/0/timezone", "message": "unknown time zone 'Mars/Olympus' ignored"}
    ]
    assert Patient.objects.get().timezone == "America/Denver"  # from ZIP 84101


def test_organization_today_is_the_date_in_its_zone():
    org = OrganizationFactory.build(timezone="America/Los_Angeles")
    assert str(organization_today(org, at=datetime(2026, 11, 24, 7, 59, tzinfo=UTC))) == "2026-11-23"
    assert str(organization_today(org, at=datetime(2026, 11, 24, 8, 0, tzinfo=UTC))) == "2026-11-24"


# --- Q3: candidate zones and the corrections table (issue 15) -------------------------------------------------


@pytest.mark.parametrize(
    ("zip_code", "phone", "stored", "candidates"),
    [
        # zipcodes puts Tuba City (Navajo Nation, DST) on Phoenix time; Moenkopi (Hopi, no DST) shares the ZIP.
        ("86045", "", "America/Denver", ("America/Denver", "America/Phoenix")),
        ("86039", "", "America/Phoenix", ("America/Phoenix",)),  # Kykotsmovi, Hopi Reservation
        ("", "+19285550143", "America/Phoenix", ("America/Phoenix", "America/Denver")),
        # phonenumbers answers New York for 219-555, 270-555 and 906-555 prefixes: the area code spans zones.
        ("", "+12195550143", "America/Chicago", ("America/Chicago", "America/New_York")),
        ("", "+12705550143", "America/Chicago", ("America/Chicago", "America/New_York")),
        ("", "+19065550143", "America/Detroit", ("America/Detroit", "America/Menominee")),
        # 907: phonenumbers also lists Pacific/Honolulu for some prefixes; Alaska is Alaska and Hawaii-Aleutian.
        ("", "+19075550143", "America/Anchorage", ("America/Anchorage", "America/Adak")),
        (
            "",
            "+13405550143",
            "America/St_Thomas",
            ("America/St_Thomas",),
        ),  # some 340 prefixes say Etc/Unknown
        ("96910", "", "Pacific/Guam", ("Pacific/Guam",)),
        ("99546", "", "America/Adak", ("America/Adak",)),
        ("00901", "", "America/Puerto_Rico", ("America/Puerto_Rico",)),
        ("79901", "", "America/Denver", ("America/Denver",)),  # El Paso
        ("32501", "", "America/Chicago", ("America/Chicago",)),  # Pensacola
        ("", "+18005550143", "", ("America/New_York",)),  # toll-free: the organization's zone
    ],
)
def test_candidate_zones_of_border_places(zip_code, phone, stored, candidates):
    tz, source = derive_timezone(explicit="", zip_code=zip_code, phone=phone)
    assert tz == stored
    assert (
        candidate_zones(
            timezone=tz,
            source=source,
            zip_code=zip_code,
            phone=phone,
            organization_timezone="America/New_York",
        )
        == candidates
    )


def test_the_feeds_own_zone_is_certain_and_a_hand_stored_zone_joins_the_set():
    kwargs = {"zip_code": "86045", "phone": "", "organization_timezone": "America/New_York"}
    assert candidate_zones(timezone="America/Phoenix", source="feed", **kwargs) == ("America/Phoenix",)
    assert candidate_zones(timezone="America/Boise", source="zip", **kwargs) == (
        "America/Boise", "America/Denver", "America/Phoenix",
    )  # fmt: skip


def test_every_correction_names_real_zones_and_a_source():
    keys = set()
    for row in ZONE_CORRECTIONS:
        assert row.kind in ("zip", "area_code") and row.key not in keys
        keys.add(row.key)
        assert row.zones and set(row.zones) <= known_timezones(), row
        assert row.place and row.source, row
        assert len(row.key) == (5 if row.kind == "zip" else 3)


@pytest.mark.django_db
def test_an_imported_tuba_city_patient_is_stored_on_navajo_time(feed_bytes):
    OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    address = {"line1": "1 Main St", "city": "Tuba City", "state": "AZ", "zip": "86045"}
    feed_import(raw=feed_bytes(patients=[feed_patient("P1", address=address, mobile_phone="")]))
    patient = Patient.objects.get()
    assert (patient.timezone, patient.timezone_source) == ("America/Denver", "zip")
