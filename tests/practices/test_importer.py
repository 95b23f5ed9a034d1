"""The feed importer: I0-I6 of SPEC §3."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import OperationalError

from practices.importer import feed_import, service
from practices.models import Account, Bill, BillSource, BillState, FeedImport, FeedStatus, Patient
from tests.factories import OrganizationFactory, feed_patient, feed_statement

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")


def snapshot() -> list:
    return [
        list(Patient.objects.order_by("pk").values()),
        list(Account.objects.order_by("pk").values()),
        list(Bill.objects.order_by("pk").values()),
    ]


# --- I1: formats --------------------------------------------------------------------------------------


def test_money_is_decimal_from_strings_and_numbers(org, feed_bytes):
    raw = feed_bytes(
        patients=[
            feed_patient(
                "P1",
                balance={
                    "0_30": 120.1,
                    "31_60": "15.25",
                    "61_90": 0,
                    "over_90": "-5",
                    "insurance_estimate": "20",
                },
            )
        ]
    )
    # json.dumps writes 120.1 as a float literal: the importer must read it as Decimal, never float.
    summary = feed_import(raw=raw)
    assert summary.rejected == 0
    account = Account.objects.get()
    assert account.bucket_0_30 == Decimal("120.10")
    assert account.bucket_over_90 == Decimal("-5.00")
    assert account.total == Decimal("130.35")
    assert account.patient_portion == Decimal("110.35")


def test_money_with_three_decimals_is_rejected_with_its_pointer(org, feed_bytes):
    raw = feed_bytes(
        patients=[
            feed_patient("P0"),
            feed_patient("P1", balance={"0_30": "1", "31_60": "10.005", "61_90": "0", "over_90": "0"}),
        ]
    )
    summary = feed_import(raw=raw)
    assert summary.errors == [
        {
            "pointer": "/patients/1/balance/31_60",
            "message": "must be an amount (a string or number with at most 2 decimals)",
        }
    ]
    assert list(Patient.objects.values_list("external_id", flat=True)) == ["P0"]


def test_a_number_with_three_decimals_is_rejected(org):
    raw = (
        b'{"generated_at": "2026-11-24T06:00:00Z", "organization": "smile-dental", "patients": ['
        + json.dumps(feed_patient("P1")).encode()[:-1]
        + b', "balance": {"0_30": 1.005}}]}'
    )
    summary = feed_import(raw=raw)
    assert summary.errors[0]["pointer"] == "/patients/0/balance/0_30"


@pytest.mark.parametrize("value", ["2026-13-01", "11/24/2026", "20261124", 20261124])
def test_dates_must_be_iso(org, feed_bytes, value):
    summary = feed_import(raw=feed_bytes(patients=[feed_patient("P1", last_visit_date=value)]))
    assert summary.errors[0]["pointer"] == "/patients/0/last_visit_date"
    assert not Patient.objects.exists()


def test_phones_are_normalised_to_e164(org, feed_bytes):
    feed_import(raw=feed_bytes(patients=[feed_patient("P1", mobile_phone="(801) 555-0123")]))
    assert Patient.objects.get().mobile_phone == "+18015550123"


@pytest.mark.parametrize(
    ("given", "stored"),
    [("+18015550123", "+18015550123"), ("+11015550123", ""), ("+18005550123", "+18005550123")],
)
def test_e164_phones_are_checked_like_any_other(org, feed_bytes, given, stored):
    # The E.164 fast path skips parsing, not validation: area code 101 does not exist.
    summary = feed_import(raw=feed_bytes(patients=[feed_patient("P1", mobile_phone=given)]))
    assert Patient.objects.get().mobile_phone == stored
    assert bool(summary.warnings) == (stored == "")


def test_an_unparseable_phone_is_a_warning_and_stored_as_missing(org, feed_bytes):
    summary = feed_import(raw=feed_bytes(patients=[feed_patient("P1", mobile_phone="555-01")]))
    assert summary.rejected == 0
    assert summary.warnings == [
        {
            "pointer": "/patients/0/mobile_phone",
            "message": "unparseable phone number '555-01' stored as missing",
        }
    ]
    assert Patient.objects.get().mobile_phone == ""


@pytest.mark.parametrize(
    ("address", "status"),
    [
        ({"line1": "1 Main St", "city": "Salt Lake City", "state": "UT", "zip": "84101"}, "valid"),
        ({"line1": "PO Box 100", "city": "Salt Lake City", "state": "UT", "zip": "84101-1234"}, "valid"),
        ({"line1": "", "city": "Salt Lake City", "state": "UT", "zip": "84101"}, "invalid"),
        ({"line1": "1 Main St", "city": "", "state": "UT", "zip": "84101"}, "invalid"),
        ({"line1": "1 Main St", "city": "Salt Lake City", "state": "XX", "zip": "84101"}, "invalid"),
        ({"line1": "1 Main St", "city": "Salt Lake City", "state": "UT", "zip": "841"}, "invalid"),
        ({"line1": "1 Main St", "city": "Salt Lake City", "state": "CA", "zip": "84101"}, "invalid"),
        ({"line1": "Main Street", "city": "Salt Lake City", "state": "UT", "zip": "84101"}, "invalid"),
    ],
)
def test_address_status_is_derived_when_the_pms_gives_none(org, feed_bytes, address, status):
    feed_import(raw=feed_bytes(patients=[feed_patient("P1", address=address)]))
    assert Patient.objects.get().address_status == status


def test_the_pms_address_status_wins(org, feed_bytes):
    feed_import(raw=feed_bytes(patients=[feed_patient("P1", address_status="invalid")]))
    assert Patient.objects.get().address_status == "invalid"


# --- I0: the import date comes from the feed ----------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "expected"), [("America/Denver", date(2026, 11, 23)), ("Asia/Tokyo", date(2026, 11, 24))]
)
def test_the_import_date_is_generated_at_in_the_organizations_zone(feed_bytes, zone, expected):
    OrganizationFactory.create(slug="smile-dental", timezone=zone)
    feed_import(raw=feed_bytes(generated_at="2026-11-24T05:00:00Z", patients=[feed_patient("P1")]))
    assert FeedImport.objects.get().import_date == expected


def test_nothing_in_an_import_depends_on_the_wall_clock(feed_bytes):
    raw = feed_bytes(
        organization=None, patients=[feed_patient("P1")], statements=[feed_statement("S-1", "P1")]
    )
    results = []
    for slug, wall_clock in (
        ("a", datetime(2026, 11, 24, 7, tzinfo=UTC)),
        ("b", datetime(2031, 2, 1, 23, tzinfo=UTC)),
    ):
        OrganizationFactory.create(slug=slug)
        with time_machine.travel(wall_clock, tick=False):
            feed_import(raw=raw, organization_slug=slug)
        bill = Bill.objects.get(organization__slug=slug)
        patient = Patient.objects.get(organization__slug=slug)
        results.append(
            (bill.created_at, bill.effective_created_date, bill.last_seen_at, patient.last_feed_at)
        )
    assert results[0] == results[1]
    assert results[0][0] == datetime(2026, 11, 24, 6, tzinfo=UTC)


# --- I2: each record on its own -----------------------------------------------------------------------


def test_valid_records_are_applied_and_invalid_ones_reported(org, feed_bytes):
    raw = feed_bytes(
        patients=[
            feed_patient("P1"),
            feed_patient("P2", first_name="", last_name=""),
            feed_patient("P3"),
            "not a record",
            feed_patient("P4", on_payment_plan="yes"),
        ],
        statements=[
            feed_statement("S-1", "P1"),
            feed_statement("S-2", "P1", amount_due="ten"),
            feed_statement("S-3", "P3", dunning_status="overdue"),
            feed_statement("S-4", "P3"),
        ],
    )
    summary = feed_import(raw=raw)
    assert summary.applied == 4
    assert summary.rejected == 5
    assert [e["pointer"] for e in summary.errors] == [
        "/patients/1/last_name",
        "/patients/3",
        "/patients/4/on_payment_plan",
        "/statements/1/amount_due",
        "/statements/2/dunning_status",
    ]
    assert sorted(Patient.objects.values_list("external_id", flat=True)) == ["P1", "P3"]
    assert sorted(Bill.objects.values_list("bill_id", flat=True)) == ["S-1", "S-4"]
    assert summary.status == FeedStatus.PARTIAL


def test_a_rejected_record_is_not_half_applied(org, feed_bytes):
    feed_import(raw=feed_bytes(patients=[feed_patient("P1")]))
    before = snapshot()
    bad = feed_patient("P1", first_name="Changed", balance={"0_30": "x"})
    summary = feed_import(raw=feed_bytes(generated_at="2026-11-25T06:00:00Z", patients=[bad]))
    assert summary.errors[0]["pointer"] == "/patients/0/balance/0_30"
    assert snapshot() == before


def test_duplicate_ids_in_one_feed_are_rejected(org, feed_bytes):
    summary = feed_import(
        raw=feed_bytes(
            patients=[feed_patient("P1"), feed_patient("P1", first_name="Other")],
            statements=[feed_statement("S-1", "P1"), feed_statement("S-1", "P1")],
        )
    )
    assert [e["pointer"] for e in summary.errors] == ["/patients/1/id", "/statements/1/bill_id"]
    assert Patient.objects.get().first_name == "Ana"


def test_unknown_fields_are_ignored_with_a_warning(org, feed_bytes):
    summary = feed_import(
        raw=feed_bytes(patients=[feed_patient("P1", shoe_size=9), feed_patient("P2", shoe_size=8)])
    )
    assert summary.rejected == 0
    assert summary.warnings == [
        {
            "pointer": "/patients/0/shoe_size",
            "message": "unknown field 'shoe_size' ignored (and in 1 more records)",
        }
    ]


def test_an_unknown_balance_field_is_ignored_with_a_warning(org, feed_bytes):
    patient = feed_patient("P1")
    patient["balance"]["over_120"] = "5.00"
    summary = feed_import(raw=feed_bytes(patients=[patient]))
    assert summary.rejected == 0
    expected = [{"pointer": "/patients/0/balance/over_120", "message": "unknown field 'over_120' ignored"}]
    assert summary.warnings == expected
    assert FeedImport.objects.get().warnings == expected


# --- I3: kept as received, idempotent, stale feeds rejected -------------------------------------------


def test_every_feed_is_kept_as_received(org, feed_bytes):
    raw = feed_bytes(patients=[feed_patient("P1"), feed_patient("P2", last_name="")])
    feed_import(raw=raw)
    feed = FeedImport.objects.get()
    assert feed.raw.encode() == raw
    assert len(feed.checksum) == 64
    assert (feed.applied_count, feed.rejected_count) == (1, 1)
    assert feed.errors == [{"pointer": "/patients/1/last_name", "message": "is required"}]
    assert feed.generated_at == datetime(2026, 11, 24, 6, tzinfo=UTC)


def test_reimporting_the_same_feed_changes_nothing(org, feed_bytes):
    raw = feed_bytes(
        patients=[feed_patient("P1"), feed_patient("P2", "P1"), feed_patient("P3", last_name="")],
        statements=[feed_statement("S-1", "P1")],
    )
    first = feed_import(raw=raw)
    before = snapshot()
    second = feed_import(raw=raw)
    assert snapshot() == before
    assert second.as_json()["errors"] == first.as_json()["errors"]
    assert (second.applied, second.rejected, second.exit_code) == (first.applied, first.rejected, 3)
    assert second.status == FeedStatus.DUPLICATE


def test_a_feed_older_than_the_last_applied_one_is_rejected_as_stale(org, feed_bytes):
    feed_import(raw=feed_bytes(generated_at="2026-11-24T06:00:00Z", patients=[feed_patient("P1")]))
    before = snapshot()
    summary = feed_import(
        raw=feed_bytes(generated_at="2026-11-23T06:00:00Z", patients=[feed_patient("P1", first_name="Old")])
    )
    assert summary.status == FeedStatus.STALE
    assert summary.exit_code == 2
    assert summary.applied == 0
    assert "stale" in summary.errors[0]["message"]
    assert snapshot() == before
    assert FeedImport.objects.filter(status=FeedStatus.STALE).count() == 1


def test_a_newer_feed_overwrites(org, feed_bytes):
    feed_import(raw=feed_bytes(generated_at="2026-11-24T06:00:00Z", patients=[feed_patient("P1")]))
    feed_import(
        raw=feed_bytes(generated_at="2026-11-25T06:00:00Z", patients=[feed_patient("P1", first_name="New")])
    )
    assert Patient.objects.get().first_name == "New"


# --- I4: guarantors, disappearance, order -------------------------------------------------------------


def test_a_dependent_without_a_known_guarantor_is_rejected(org, feed_bytes):
    summary = feed_import(raw=feed_bytes(patients=[feed_patient("P1"), feed_patient("K1", "P9")]))
    assert summary.errors == [
        {
            "pointer": "/patients/1/guarantor_id",
            "message": "guarantor 'P9' is not in the feed and not already known",
        }
    ]
    assert not Patient.objects.filter(external_id="K1").exists()


def test_a_dependent_whose_guarantor_record_was_rejected_is_rejected(org, feed_bytes):
    summary = feed_import(
        raw=feed_bytes(patients=[feed_patient("P1", last_name=""), feed_patient("K1", "P1")])
    )
    assert [e["pointer"] for e in summary.errors] == ["/patients/0/last_name", "/patients/1/guarantor_id"]


def test_a_dependent_of_an_already_known_guarantor_is_accepted(org, feed_bytes):
    feed_import(raw=feed_bytes(generated_at="2026-11-24T06:00:00Z", patients=[feed_patient("P1")]))
    feed_import(raw=feed_bytes(generated_at="2026-11-25T06:00:00Z", patients=[feed_patient("K1", "P1")]))
    child = Patient.objects.get(external_id="K1")
    assert child.guarantor == Patient.objects.get(external_id="P1")
    assert not child.is_guarantor


def test_guarantors_point_to_themselves_and_dependents_balances_are_ignored(org, feed_bytes):
    feed_import(
        raw=feed_bytes(patients=[feed_patient("K1", "P1", balance={"0_30": "999"}), feed_patient("P1")])
    )
    guarantor = Patient.objects.get(external_id="P1")
    assert guarantor.guarantor_id == guarantor.pk
    assert Account.objects.get().guarantor == guarantor
    assert Account.objects.count() == 1


def test_a_patient_missing_from_a_later_feed_is_not_deleted(org, feed_bytes):
    feed_import(raw=feed_bytes(generated_at="2026-11-24T06:00:00Z", patients=[feed_patient("P1"), feed_patient("P2")],
                               statements=[feed_statement("S-1", "P2")]))  # fmt: skip
    feed_import(raw=feed_bytes(generated_at="2026-11-25T06:00:00Z", patients=[feed_patient("P1")]))
    assert Patient.objects.filter(external_id="P2").exists()
    assert Bill.objects.get(bill_id="S-1").state == BillState.ACTIVE


def test_patients_are_applied_before_statements(org, feed_bytes):
    # The statement comes first in the document; its guarantor only appears under "patients".
    raw = json.dumps({"generated_at": "2026-11-24T06:00:00Z", "organization": "smile-dental",
                      "statements": [feed_statement("S-1", "P1")], "patients": [feed_patient("P1")]}).encode()  # fmt: skip
    summary = feed_import(raw=raw)
    assert summary.rejected == 0
    assert Bill.objects.get().guarantor.external_id == "P1"


# A statement that names a dependent belongs to the dependent's guarantor (I1a):
# tests/practices/test_real_practice_data.py.


def test_a_new_statement_bill_starts_its_clock_at_the_statement_date(org, feed_bytes):
    feed_import(raw=feed_bytes(patients=[feed_patient("P1")], statements=[feed_statement("S-1", "P1")]))
    bill = Bill.objects.get()
    assert (bill.source, bill.generation, bill.state) == (BillSource.STATEMENT, 1, BillState.ACTIVE)
    assert bill.effective_created_date == date(2026, 11, 20)
    assert bill.created_at == datetime(2026, 11, 24, 6, tzinfo=UTC)


# --- I6: the campaign follows the PMS balance ---------------------------------------------------------


def test_a_statement_bill_takes_the_latest_amount_due(org, feed_bytes):
    feed_import(raw=feed_bytes(patients=[feed_patient("P1")], statements=[feed_statement("S-1", "P1")]))
    feed_import(raw=feed_bytes(generated_at="2026-11-26T06:00:00Z",
                               statements=[feed_statement("S-1", "P1", amount_due="60.50")]))  # fmt: skip
    bill = Bill.objects.get()
    assert bill.amount_due == Decimal("60.50")
    assert bill.state == BillState.ACTIVE
    assert bill.created_at == datetime(2026, 11, 24, 6, tzinfo=UTC)


def test_an_amount_that_drops_to_zero_closes_the_campaign_as_paid(org, feed_bytes):
    feed_import(raw=feed_bytes(patients=[feed_patient("P1")], statements=[feed_statement("S-1", "P1")]))
    feed_import(raw=feed_bytes(generated_at="2026-11-26T06:00:00Z",
                               statements=[feed_statement("S-1", "P1", amount_due="0")]))  # fmt: skip
    bill = Bill.objects.get()
    assert bill.state == BillState.PAID
    assert bill.ended_at == datetime(2026, 11, 26, 6, tzinfo=UTC)


def test_a_guarantor_going_on_a_payment_plan_closes_its_campaigns(org, feed_bytes):
    feed_import(raw=feed_bytes(patients=[feed_patient("P1")], statements=[feed_statement("S-1", "P1")]))
    feed_import(
        raw=feed_bytes(
            generated_at="2026-11-26T06:00:00Z", patients=[feed_patient("P1", on_payment_plan=True)]
        )
    )
    assert Bill.objects.get().state == BillState.CLOSED


def test_a_request_campaign_follows_the_guarantors_patient_portion(org, feed_bytes):
    feed_import(raw=feed_bytes(patients=[feed_patient("P1"), feed_patient("P2")]))
    for pid in ("P1", "P2"):
        Bill.objects.create(
            organization=org, guarantor=Patient.objects.get(external_id=pid), bill_id=f"R-{pid}",
            source=BillSource.REQUEST, amount_due=Decimal("100.00"), created_at=datetime(2026, 11, 24, tzinfo=UTC),
            effective_created_date=date(2026, 11, 24), last_seen_at=datetime(2026, 11, 24, tzinfo=UTC),
        )  # fmt: skip
    feed_import(
        raw=feed_bytes(
            generated_at="2026-11-26T06:00:00Z",
            patients=[
                feed_patient("P1", balance={"0_30": "80.00", "insurance_estimate": "30.00"}),
                feed_patient("P2", balance={"0_30": "20.00", "insurance_estimate": "30.00"}),
            ],
        )
    )
    p1 = Bill.objects.get(bill_id="R-P1")
    p2 = Bill.objects.get(bill_id="R-P2")
    assert (p1.amount_due, p1.state) == (Decimal("50.00"), BillState.ACTIVE)
    assert (p2.amount_due, p2.state) == (Decimal("0.00"), BillState.PAID)


def test_an_import_that_fails_in_the_database_is_kept_as_failed_with_its_error(feed_bytes, monkeypatch):
    """I3: a failed import (a lost lock race, an outage) is recorded, nothing half-applied, and exits 1."""
    OrganizationFactory.create(slug="smile-dental")

    def boom(*args, **kwargs):
        raise OperationalError("deadlock detected")

    monkeypatch.setattr(service, "_close_campaigns", boom)
    summary = feed_import(raw=feed_bytes(patients=[feed_patient("P1")]))

    assert (summary.status, summary.exit_code) == (FeedStatus.FAILED, 1)
    feed = FeedImport.objects.get()
    assert (feed.status, feed.applied_count) == (FeedStatus.FAILED, 0)
    assert "deadlock detected" in feed.errors[0]["message"]
    assert not Patient.objects.exists()


@pytest.mark.parametrize(
    "generated_at",
    ["2026-02-30T06:00:00Z", "2026-11-24T10:61:00Z", "0001-01-01T00:00:00Z", "9845-01-01T00:00:00Z"],
)
def test_a_generated_at_that_is_no_real_moment_or_far_ahead_is_unusable_and_blocks_nothing(
    feed_bytes, generated_at
):
    """Issue 11: impossible dates answered 500; a feed of the year 9845 made every later feed stale (I0)."""
    OrganizationFactory.create(slug="smile-dental")
    with time_machine.travel(datetime(2026, 11, 24, 7, tzinfo=UTC), tick=False):
        summary = feed_import(raw=feed_bytes(generated_at=generated_at, patients=[feed_patient("P1")]))
        assert (summary.status, summary.exit_code) == (FeedStatus.UNUSABLE, 2)
        assert "generated_at" in summary.errors[0]["message"]
        assert feed_import(raw=feed_bytes(patients=[feed_patient("P1")])).status == FeedStatus.APPLIED


def test_a_feed_from_a_pms_clock_a_few_hours_fast_is_still_taken(feed_bytes):
    OrganizationFactory.create(slug="smile-dental")
    with time_machine.travel(datetime(2026, 11, 24, 7, tzinfo=UTC), tick=False):
        summary = feed_import(
            raw=feed_bytes(generated_at="2026-11-25T06:00:00Z", patients=[feed_patient("P1")])
        )
    assert summary.status == FeedStatus.APPLIED


def test_when_a_guarantor_becomes_a_dependent_its_dependents_follow_it_and_its_account_goes(feed_bytes):
    """Issue 11: families merged in the PMS. Feed 1: G1 pays for D1. Feed 2 (D1 not in it): G1 is now a dependent
    of G2. D1 must not keep pointing at a patient that is no longer a guarantor, and G1 keeps no account."""
    OrganizationFactory.create(slug="smile-dental")
    feed_import(raw=feed_bytes(patients=[feed_patient("G1"), feed_patient("D1", guarantor_id="G1")]))
    summary = feed_import(raw=feed_bytes(generated_at="2026-11-25T06:00:00Z",
                                         patients=[feed_patient("G2"), feed_patient("G1", guarantor_id="G2")]))  # fmt: skip

    d1 = Patient.objects.get(external_id="D1")
    assert d1.guarantor is not None
    assert (d1.guarantor.external_id, d1.guarantor_external_id) == ("G2", "G2")
    assert set(Account.objects.values_list("guarantor__external_id", flat=True)) == {"G2"}
    assert {"pointer": "/patients/1/guarantor_id",
            "message": "'G1' is now a dependent; its dependents D1 follow it to its new guarantor"} in summary.warnings  # fmt: skip
