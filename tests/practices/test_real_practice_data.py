"""I1a: real practice-management data is messy, and a formatting matter never costs a family its balance.

Each case is a warning that names its JSON pointer, with the record (and its family) applied. The records are
shaped the way practices' systems hold them:

- Open Dental keeps an empty date column as ``0001-01-01`` (C#'s ``DateTime.MinValue``, shown blank in its
  UI; its API documentation gives ``"Birthdate": "0001-01-01"`` for a patient with none), its ``State`` is
  free text, and its aging amounts are doubles (``BalTotal``, ``Bal_0_30`` …), which its JSON writes as
  ``0.30000000000000004`` when a balance was built from 0.1 + 0.2.
- Address forms are USPS Publication 28's: rural route (§243: ``RR 2 BOX 152``), highway contract (§244:
  ``HC 68 BOX 23A``), PO box (§28), General Delivery (§27), military (§225: ``PSC 802 BOX 74 / APO AE
  09499``, ``UNIT 2050 BOX 4190 / APO AP 96278``, ``UNIT 8400 BOX 0000 / DPO AE 09498``), Puerto Rico
  urbanizations (§29: ``URB LAS GLADIOLAS / 150 CALLE A / SAN JUAN PR 00926``); grid addresses are
  Wisconsin's rural numbering (``N1234 County Rd K``, Waushara County); ``One Gateway Plaza`` is Los
  Angeles Metro's headquarters (90012).
- The New England ZIP read as a number (``2134`` for Boston's 02134) is what Excel does to a ZIP column.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from practices.importer import feed_import
from practices.models import Account, Bill, Patient
from tests.factories import OrganizationFactory, feed_patient, feed_statement

pytestmark = pytest.mark.django_db

SLC = {"line1": "1 Main St", "line2": "", "city": "Salt Lake City", "state": "UT", "zip": "84101"}


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")


def family(**guarantor: Any) -> list[dict[str, Any]]:
    """A guarantor (with ``guarantor`` overrides) and a dependent."""
    return [feed_patient("P1", **guarantor), feed_patient("K1", "P1", first_name="Leo")]


def imported(feed_bytes: Any, patients: list[dict[str, Any]], statements: list[dict[str, Any]] | None = None):
    summary = feed_import(raw=feed_bytes(patients=patients, statements=statements or []))
    assert summary.errors == []
    return summary


def assert_family_kept() -> None:
    assert sorted(Patient.objects.values_list("external_id", flat=True)) == ["K1", "P1"]
    assert Account.objects.get().guarantor.external_id == "P1"


# --- states ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "address", "code"),
    [
        ("Utah", SLC, "UT"),
        ("utah", SLC, "UT"),
        ("ut", SLC, "UT"),
        ("new york", {"line1": "350 5th Ave", "city": "New York", "zip": "10118"}, "NY"),
        ("N.Y.", {"line1": "350 5th Ave", "city": "New York", "zip": "10118"}, "NY"),
        ("D.C.", {"line1": "1600 Pennsylvania Ave NW", "city": "Washington", "zip": "20500"}, "DC"),
        ("District of Columbia", {"line1": "1600 Pennsylvania Ave NW", "city": "Washington", "zip": "20500"}, "DC"),
        ("Calif.", {"line1": "One Gateway Plaza", "city": "Los Angeles", "zip": "90012"}, "CA"),
        ("Puerto Rico", {"line1": "URB Las Gladiolas", "line2": "150 Calle A", "city": "San Juan", "zip": "00926"},
         "PR"),
    ],
)  # fmt: skip
def test_a_state_typed_out_is_its_usps_code_with_a_warning(org, feed_bytes, typed, address, code):
    summary = imported(feed_bytes, family(address={**address, "state": typed}))
    assert_family_kept()
    guarantor = Patient.objects.get(external_id="P1")
    assert (guarantor.address_state, guarantor.address_status) == (code, "valid")
    assert summary.warnings == [
        {"pointer": "/patients/0/address/state", "message": f"state {typed!r} read as {code!r}"}
    ]


def test_an_unknown_state_is_a_warning_and_the_family_is_kept_with_an_invalid_address(org, feed_bytes):
    summary = imported(
        feed_bytes,
        family(address={**SLC, "state": "Utha"}),
        [feed_statement("S-1", "P1", amount_due="80.00")],
    )
    assert_family_kept()
    guarantor = Patient.objects.get(external_id="P1")
    assert (guarantor.address_state, guarantor.address_status) == ("", "invalid")
    assert Bill.objects.get().amount_due == Decimal("80.00")
    assert summary.warnings == [
        {
            "pointer": "/patients/0/address/state",
            "message": "unknown state 'Utha': stored as missing, the address is invalid",
        }
    ]


def test_one_same_repair_in_many_records_is_one_warning_with_a_count(org, feed_bytes):
    patients = [feed_patient(f"P{n}", address={**SLC, "state": "Utah"}) for n in range(3)]
    summary = imported(feed_bytes, patients)
    assert summary.warnings == [
        {
            "pointer": "/patients/0/address/state",
            "message": "state 'Utah' read as 'UT' (and in 2 more records)",
        }
    ]


# --- money ------------------------------------------------------------------------------------------------


def test_an_aging_double_is_rounded_to_cents_with_a_warning_and_the_family_kept(org, feed_bytes):
    # Open Dental's Bal_0_30 after 0.1 + 0.2; InsEst after 0.7 * 3; written by the connector as JSON numbers.
    raw = (
        b'{"generated_at": "2026-11-24T06:00:00Z", "organization": "smile-dental", "patients": ['
        b'{"id": "P1", "guarantor_id": "P1", "first_name": "Ana", "last_name": "Diaz", "address": '
        b'{"line1": "1 Main St", "city": "Salt Lake City", "state": "UT", "zip": "84101"}, "balance": '
        b'{"0_30": 120.30000000000001, "31_60": 0.30000000000000004, "61_90": 0, "over_90": 0, '
        b'"insurance_estimate": 2.0999999999999996}},'
        b'{"id": "K1", "guarantor_id": "P1", "first_name": "Leo", "last_name": "Diaz"}],'
        b'"statements": [{"bill_id": "S-1", "guarantor_id": "P1", "statement_date": "2026-11-20", '
        b'"amount_due": 118.50000000000001}]}'
    )
    summary = feed_import(raw=raw)
    assert (summary.applied, summary.rejected) == (3, 0)
    account = Account.objects.get()
    assert (account.bucket_0_30, account.bucket_31_60, account.insurance_estimate) == (
        Decimal("120.30"),
        Decimal("0.30"),
        Decimal("2.10"),
    )
    assert account.patient_portion == Decimal("118.50")
    assert Bill.objects.get().amount_due == Decimal("118.50")
    assert summary.warnings == [
        {"pointer": "/patients/0/balance/0_30", "message": "120.30000000000001 read as 120.30 (a double's rounding)"},
        {"pointer": "/patients/0/balance/31_60", "message": "0.30000000000000004 read as 0.30 (a double's rounding)"},
        {
            "pointer": "/patients/0/balance/insurance_estimate",
            "message": "2.0999999999999996 read as 2.10 (a double's rounding)",
        },
        {"pointer": "/statements/0/amount_due", "message": "118.50000000000001 read as 118.50 (a double's rounding)"},
    ]  # fmt: skip


@pytest.mark.parametrize("value", [b'"0.305"', b"0.305", b"0.3000011"])
def test_money_that_is_not_within_a_millionth_of_a_cent_or_is_a_string_is_still_rejected(org, value):
    raw = (
        b'{"generated_at": "2026-11-24T06:00:00Z", "organization": "smile-dental", "patients": ['
        b'{"id": "P1", "guarantor_id": "P1", "first_name": "Ana", "last_name": "Diaz", "balance": {"0_30": '
        + value
        + b"}}]}"
    )
    summary = feed_import(raw=raw)
    assert [e["pointer"] for e in summary.errors] == ["/patients/0/balance/0_30"]


# --- names ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("last_name", ["Wasatch Mining Co", "Estate of Harold Young"])
def test_a_business_or_estate_guarantor_with_no_first_name_is_kept(org, feed_bytes, last_name):
    summary = imported(feed_bytes, family(first_name="", last_name=last_name))
    assert summary.warnings == []
    assert_family_kept()
    assert Patient.objects.get(external_id="P1").last_name == last_name


def test_a_dependent_needs_a_first_name_and_a_record_with_no_name_at_all_is_rejected(org, feed_bytes):
    summary = feed_import(
        raw=feed_bytes(
            patients=[
                feed_patient("P1"),
                feed_patient("K1", "P1", first_name=""),
                feed_patient("P2", first_name="", last_name=""),
            ]
        )
    )
    assert [e["pointer"] for e in summary.errors] == ["/patients/1/first_name", "/patients/2/last_name"]
    assert list(Patient.objects.values_list("external_id", flat=True)) == ["P1"]


# --- statements on a dependent -------------------------------------------------------------------------


def test_a_walkout_statement_on_a_dependent_belongs_to_the_guarantor_and_remembers_the_dependent(
    org, feed_bytes
):
    # A walkout (single-patient) statement: the PMS printed it for the child, under the child's id.
    summary = imported(feed_bytes, family(), [feed_statement("S-1", "K1", amount_due="45.00")])
    bill = Bill.objects.select_related("guarantor", "patient").get()
    assert (bill.guarantor.external_id, bill.patient.external_id if bill.patient else None) == ("P1", "K1")
    assert bill.amount_due == Decimal("45.00")
    assert summary.warnings == [
        {
            "pointer": "/statements/0/guarantor_id",
            "message": "'K1' is a dependent: the statement belongs to its guarantor 'P1' and is remembered as "
            "'K1''s",
        }
    ]


def test_a_statement_names_its_patient_with_patient_id(org, feed_bytes):
    summary = imported(
        feed_bytes, family(), [feed_statement("S-1", "P1", patient_id="K1"), feed_statement("S-2", "P1")]
    )
    bills = dict(Bill.objects.values_list("bill_id", "patient__external_id"))
    assert bills == {"S-1": "K1", "S-2": None}
    assert summary.warnings == []


def test_a_patient_id_outside_the_family_or_unknown_is_a_warning_and_the_bill_kept(org, feed_bytes):
    patients = [*family(), feed_patient("P2")]
    statements = [feed_statement("S-1", "P2", patient_id="K1"), feed_statement("S-2", "P1", patient_id="Z9")]
    summary = imported(feed_bytes, patients, statements)
    assert dict(Bill.objects.values_list("bill_id", "patient")) == {"S-1": None, "S-2": None}
    assert summary.warnings == [
        {
            "pointer": "/statements/0/patient_id",
            "message": "patient 'K1' is not in guarantor 'P2''s family: the statement is kept without it",
        },
        {"pointer": "/statements/1/patient_id", "message": "patient 'Z9' is not known: the statement is kept without it"},
    ]  # fmt: skip


def test_a_statement_whose_guarantor_is_no_known_patient_is_still_rejected(org, feed_bytes):
    summary = feed_import(raw=feed_bytes(patients=family(), statements=[feed_statement("S-1", "X1")]))
    assert summary.errors == [
        {"pointer": "/statements/0/guarantor_id", "message": "guarantor 'X1' is not a known patient"}
    ]


# --- dates ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sentinel", ["0001-01-01", "1800-01-01", "1899-12-30", "0000-00-00"])
def test_a_sentinel_date_before_1900_is_no_date_never_a_date_of_birth(org, feed_bytes, sentinel):
    summary = imported(feed_bytes, family(date_of_birth=sentinel, last_visit_date=sentinel))
    guarantor = Patient.objects.get(external_id="P1")
    assert (guarantor.date_of_birth, guarantor.last_visit_date) == (None, None)
    message = f"{sentinel} is the PMS's 'no date': stored as no date"
    assert summary.warnings == [
        {"pointer": "/patients/0/date_of_birth", "message": message},
        {"pointer": "/patients/0/last_visit_date", "message": message},
    ]


def test_a_sentinel_due_date_is_no_due_date_and_a_sentinel_statement_date_rejects_the_statement(
    org, feed_bytes
):
    summary = feed_import(
        raw=feed_bytes(
            patients=family(),
            statements=[
                feed_statement("S-1", "P1", due_date="0001-01-01"),
                feed_statement("S-2", "P1", statement_date="0001-01-01"),
            ],
        )
    )
    assert summary.errors == [
        {
            "pointer": "/statements/1/statement_date",
            "message": "'0001-01-01' is the PMS's 'no date'; a date is required here",
        }
    ]
    assert Bill.objects.get().due_date is None


# --- emails -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["none", "NA", "N/A", "noemail@smiledental.com", "no@email.com", "NoEmail@gmail.com"]
)
def test_a_placeholder_email_is_dropped_with_a_warning(org, feed_bytes, typed):
    summary = imported(feed_bytes, family(email=typed))
    assert Patient.objects.get(external_id="P1").email == ""
    assert summary.warnings == [
        {
            "pointer": "/patients/0/email",
            "message": f"{typed!r} is a placeholder, not an email address: stored as missing",
        }
    ]


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("ana@example.com; leo@example.com", "ana@example.com"),
        ("ana@example.com, leo@example.com", "ana@example.com"),
        ("ana@example ; leo@example.com", "leo@example.com"),
        ("noemail@example.com;ana@example.com", "ana@example.com"),
    ],
)
def test_of_several_emails_in_one_field_the_first_valid_one_is_kept(org, feed_bytes, typed, kept):
    summary = imported(feed_bytes, family(email=typed))
    assert Patient.objects.get(external_id="P1").email == kept
    assert summary.warnings == [
        {
            "pointer": "/patients/0/email",
            "message": f"several addresses in {typed!r}: kept the first valid one, {kept!r}",
        }
    ]


# --- addresses --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        {"line1": "RR 2 Box 152", "city": "Fairview", "state": "UT", "zip": "84629"},
        {"line1": "Rural Route 2 Box 152", "city": "Fairview", "state": "UT", "zip": "84629"},
        {"line1": "HC 68 Box 23A", "city": "Ekalaka", "state": "MT", "zip": "59324"},
        {"line1": "N1234 County Rd K", "city": "Wautoma", "state": "WI", "zip": "54982"},
        {"line1": "One Gateway Plaza", "city": "Los Angeles", "state": "CA", "zip": "90012"},
        {"line1": "Gateway Towers", "line2": "100 Main St", "city": "Salt Lake City", "state": "UT", "zip": "84101"},
        {"line1": "General Delivery", "city": "Moab", "state": "UT", "zip": "84532"},
        {"line1": "PO Box 1234", "city": "Provo", "state": "UT", "zip": "84603"},
        {"line1": "P.O. Box 1234", "city": "Provo", "state": "UT", "zip": "84603"},
        {"line1": "PSC 802 Box 74", "city": "APO", "state": "AE", "zip": "09499-0074"},
        {"line1": "Unit 2050 Box 4190", "city": "APO", "state": "AP", "zip": "96278"},
        {"line1": "Unit 8400 Box 0000", "city": "DPO", "state": "AE", "zip": "09498"},
        {"line1": "USCGC Hamilton", "city": "FPO", "state": "AP", "zip": "96667"},
        {"line1": "URB Las Gladiolas", "line2": "150 Calle A", "city": "San Juan", "state": "PR", "zip": "00926"},
        {"line1": "123-45 Main St", "city": "New York", "state": "NY", "zip": "10118"},
        {"line1": "12 1/2 Elm St", "city": "Salt Lake City", "state": "UT", "zip": "84101"},
    ],
    ids=lambda a: a["line1"],
)  # fmt: skip
def test_mailable_us_address_forms_are_valid(org, feed_bytes, address):
    summary = imported(feed_bytes, family(address=address))
    assert Patient.objects.get(external_id="P1").address_status == "valid"
    assert summary.warnings == []


@pytest.mark.parametrize(
    "address",
    [
        {"line1": "Main Street", "city": "Salt Lake City", "state": "UT", "zip": "84101"},
        {"line1": "Unknown", "city": "Salt Lake City", "state": "UT", "zip": "84101"},
        {"line1": "PSC 802 Box 74", "city": "Salt Lake City", "state": "AE", "zip": "09499"},
        {"line1": "Unit 2050 Box 4190", "city": "APO", "state": "UT", "zip": "84101"},
    ],
    ids=["no house number", "placeholder", "military state with a town", "APO with a state"],
)
def test_what_is_no_us_address_is_still_invalid(org, feed_bytes, address):
    imported(feed_bytes, family(address=address))
    assert Patient.objects.get(external_id="P1").address_status == "invalid"


def test_a_zip_plus_4_without_its_dash_gets_it(org, feed_bytes):
    summary = imported(feed_bytes, family(address={**SLC, "zip": "841011234"}))
    guarantor = Patient.objects.get(external_id="P1")
    assert (guarantor.address_zip, guarantor.address_status) == ("84101-1234", "valid")
    assert summary.warnings == [
        {
            "pointer": "/patients/0/address/zip",
            "message": "ZIP '841011234' read as '84101-1234' (ZIP+4 without its dash)",
        }
    ]


@pytest.mark.parametrize(
    ("zip_code", "stored"),
    [("2134", "02134"), (2134, "02134"), ("21341234", "02134-1234"), ("2134-1234", "02134-1234")],
)
def test_a_new_england_zip_that_lost_its_leading_zero_gets_it_back_and_gives_the_time_zone(
    org, feed_bytes, zip_code, stored
):
    # A Boston patient with a Utah cell phone (801): the place comes from the ZIP, not the area code (Q3).
    address = {"line1": "10 Harvard Ave", "city": "Boston", "state": "MA", "zip": zip_code}
    summary = imported(feed_bytes, family(address=address, mobile_phone="+18015550100"))
    guarantor = Patient.objects.get(external_id="P1")
    assert (guarantor.address_zip, guarantor.address_status) == (stored, "valid")
    assert (guarantor.timezone, guarantor.timezone_source) == ("America/New_York", "zip")
    assert summary.warnings == [
        {
            "pointer": "/patients/0/address/zip",
            "message": f"ZIP {str(zip_code)!r} read as {stored!r} (a ZIP in MA that lost its leading zero)",
        }
    ]


def test_a_four_digit_zip_outside_the_zero_states_is_left_alone_and_invalid(org, feed_bytes):
    imported(feed_bytes, family(address={**SLC, "zip": "8410"}))
    guarantor = Patient.objects.get(external_id="P1")
    assert (guarantor.address_zip, guarantor.address_status) == ("8410", "invalid")


# --- one Open Dental-shaped family with every quirk at once ----------------------------------------------


def test_an_open_dental_family_with_every_quirk_imports_whole(org, feed_bytes):
    patients = [
        feed_patient(
            "1042", first_name="", last_name="Estate of Harold Young", date_of_birth="0001-01-01",
            email="noemail@gmail.com", address={"line1": "HC 68 Box 23A", "city": "Ekalaka", "state": "montana",
                                                 "zip": "59324"},
        ),
        feed_patient("1043", "1042", first_name="June", last_name="Young", email="june@example.com; hy@example.com",
                     date_of_birth="1961-07-02"),
    ]  # fmt: skip
    statements = [feed_statement("88101", "1043", amount_due="212.40")]
    summary = imported(feed_bytes, patients, statements)
    assert (summary.applied, summary.rejected, len(summary.warnings)) == (3, 0, 5)
    estate = Patient.objects.get(external_id="1042")
    assert (estate.first_name, estate.date_of_birth, estate.email) == ("", None, "")
    assert (estate.address_state, estate.address_status) == ("MT", "valid")
    assert Patient.objects.get(external_id="1043").email == "june@example.com"
    bill = Bill.objects.get()
    assert (bill.guarantor_id, bill.patient_id) == (estate.pk, Patient.objects.get(external_id="1043").pk)
