"""Q3: the recipient's zone is the patient's own, else the ZIP's, else a single-zone area code's, else the org's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from practices.importer import feed_import
from practices.models import Patient
from practices.timezones import derive_timezone, organization_today
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
