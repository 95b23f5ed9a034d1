"""C2: Open Dental records to the feed of SPEC §3, by Open Dental's own conventions. Pure functions, no
database: one row per case, the reason in its id.

Record shapes are the example responses of Open Dental's API pages (https://www.opendental.com/site/
apipatients.html, apiaccountmodules.html, apistatements.html, apipayplans.html), with the quirks real offices
have: 0001-01-01 for "no birthdate", TxtMsgOk "No", money in doubles (0.30000000000000004)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from pms.opendental.mapping import build_feed, patient_record
from pms.opendental.reader import Known, OpenDentalRead, patient_portion, plan_is_open, report_aging
from pms.opendental.values import cents, iso_639_1, od_date, od_stamp, stamp_before

TODAY = date(2026, 11, 24)
NO_CONTACT = frozenset({"collections", "bad debt"})


def od_patient(num: int, guarantor: int | None = None, **fields: Any) -> dict[str, Any]:
    """Patients GET (single)'s example (apipatients.html), renumbered."""
    record = {
        "PatNum": num, "LName": "Smith", "FName": "Jane", "MiddleI": "", "Preferred": "", "PatStatus": "Patient",
        "Birthdate": "1976-05-24", "Address": "125 Satin Heights", "Address2": "", "City": "San Jose", "State": "CA",
        "Zip": "95123", "HmPhone": "(408)555-0177", "WkPhone": "", "WirelessPhone": "(408)555-0142",
        "Guarantor": guarantor or num, "Email": "smithfam@yahoo.com", "BillingType": "Standard Account",
        "BalTotal": 0.0, "Language": "", "DateTStamp": "2026-11-20 15:34:34", "TxtMsgOk": "Unknown",
    }  # fmt: skip
    record.update(fields)
    return record


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"TxtMsgOk": "No"}, {"sms_opt_out": True, "sms_consent": "no"}, id="TxtMsgOk-No-is-a-PMS-SMS-opt-out"),
        pytest.param({"TxtMsgOk": "Yes"}, {"sms_consent": "yes"}, id="TxtMsgOk-Yes-is-consent"),
        pytest.param({"TxtMsgOk": "Unknown"}, {"sms_consent": "unknown"}, id="TxtMsgOk-Unknown"),
        pytest.param({"PatStatus": "Deceased"}, {"deceased": True, "do_not_contact": True}, id="deceased-is-do-not-contact"),
        pytest.param({"BillingType": "COLLECTIONS"}, {"do_not_contact": True}, id="collections-billing-type-any-case"),
        pytest.param({"BillingType": "Bad Debt"}, {"do_not_contact": True}, id="no-statements-billing-type"),
        pytest.param({"Language": "spa"}, {"language": "es"}, id="ISO-639-2-spa-is-es"),
        pytest.param({"Preferred": "Janie"}, {"preferred_name": "Janie"}, id="Preferred-is-the-preferred-name"),
        pytest.param({"Birthdate": "1976-05-24"}, {"date_of_birth": "1976-05-24"}, id="a-birthdate"),
    ],
)  # fmt: skip
def test_patient_fields_follow_open_dental_conventions(fields, expected):
    record = patient_record(od_patient(48, **fields), no_contact_types=NO_CONTACT, last_visit=None)
    assert {key: record.get(key) for key in expected} == expected


@pytest.mark.parametrize(
    ("fields", "absent"),
    [
        pytest.param({"Birthdate": "0001-01-01"}, "date_of_birth", id="0001-01-01-is-no-birthdate"),
        pytest.param({"Language": ""}, "language", id="no-language"),
        pytest.param({"Language": "Klingon"}, "language", id="a-custom-language-is-none"),
        pytest.param({"TxtMsgOk": "Yes"}, "sms_opt_out", id="consent-is-no-opt-out"),
        pytest.param({"BillingType": "Standard Account"}, "do_not_contact", id="standard-account-is-contacted"),
        pytest.param({"PatStatus": "Inactive"}, "deceased", id="inactive-is-not-deceased"),
    ],
)  # fmt: skip
def test_patient_fields_left_out(fields, absent):
    assert absent not in patient_record(
        od_patient(48, **fields), no_contact_types=NO_CONTACT, last_visit=None
    )


def test_the_phones_are_the_mobile_and_the_call_list_numbers():
    record = patient_record(
        od_patient(48, WkPhone="(408)555-0199"), no_contact_types=NO_CONTACT, last_visit=None
    )
    assert (record["mobile_phone"], record["home_phone"], record["work_phone"]) == (
        "(408)555-0142", "(408)555-0177", "(408)555-0199",
    )  # fmt: skip
    assert record["id"] == "48" and record["guarantor_id"] == "48"


def read_of(
    patients: list[dict[str, Any]], *, aging: dict[int, dict[str, Any]] | None = None,
    statements: list[dict[str, Any]] | None = None, plans: dict[int, list[dict[str, Any]]] | None = None,
    claims: dict[int, int] | None = None, visits: dict[int, date] | None = None,
) -> OpenDentalRead:  # fmt: skip
    by_num = {p["PatNum"]: p for p in patients}
    family_of = {num: p["Guarantor"] for num, p in by_num.items()}
    return OpenDentalRead(
        full=True, server_time="2026-11-24 05:00:00", patients=by_num, family_of=family_of, aging=aging or {},
        plans=plans or {}, statements=statements or [], open_claims=claims or {}, visits=visits or {},
        families=set(family_of.values()),
    )  # fmt: skip


def feed(read: OpenDentalRead, known: Known | None = None) -> tuple[dict[str, Any], list[dict[str, str]]]:
    return build_feed(read=read, known=known or Known(), organization="smile-dental", today=TODAY,
                      generated_at="2026-11-24T12:00:00Z", no_contact_types=NO_CONTACT)  # fmt: skip


def od_statement(num: int, patnum: int, **fields: Any) -> dict[str, Any]:
    """Statements GET (single)'s example (apistatements.html), with a balance recorded."""
    record = {
        "StatementNum": num, "PatNum": patnum, "DateSent": "2026-11-20", "DateRangeFrom": "0001-01-01",
        "DateRangeTo": "2026-11-20", "Mode_": "Mail", "SinglePatient": "false", "IsSent": "true",
        "DateTStamp": "2026-11-20 10:58:28", "IsReceipt": "false", "IsInvoice": "false", "IsBalValid": "true",
        "InsEst": 20.0, "BalTotal": 140.0, "StatementType": "NotSet",
    }  # fmt: skip
    record.update(fields)
    return record


AGING = {"Bal_0_30": 0.30000000000000004, "Bal_31_60": 49.0, "Bal_61_90": 0.0, "BalOver90": 90.7, "Total": 140.0,
         "InsEst": 20.0, "EstBal": 120.0, "PatEstBal": 120.0, "Unearned": 0.0}  # fmt: skip


def test_aging_lives_on_the_guarantor_with_insest_as_the_insurance_estimate():
    read = read_of([od_patient(10, BalTotal=140.0), od_patient(11, 10)], aging={10: AGING})
    document, notes = feed(read)
    guarantor, dependent = document["patients"]
    assert guarantor["balance"] == {"0_30": "0.30", "31_60": "49.00", "61_90": "0.00", "over_90": "90.70",
                                    "insurance_estimate": "20.00"}  # fmt: skip
    assert "balance" not in dependent and dependent["guarantor_id"] == "10"
    assert notes == []  # a double's noise is not a warning


def test_an_amount_with_real_extra_decimals_is_rounded_with_a_warning():
    read = read_of([od_patient(10)], aging={10: {**AGING, "Bal_31_60": 49.005}})
    document, notes = feed(read)
    assert document["patients"][0]["balance"]["31_60"] == "49.01"
    assert "rounded to the cent" in notes[0]["message"] and "Bal_31_60 of family 10" in notes[0]["message"]


def test_a_family_not_asked_for_aging_owes_nothing():
    document, _ = feed(read_of([od_patient(10)]))
    assert set(document["patients"][0]["balance"].values()) == {"0.00"}


@pytest.mark.parametrize(
    ("plan", "on_plan"),
    [
        pytest.param({"IsClosed": "false", "PlanNum": 0}, True, id="an-open-patient-plan"),
        pytest.param({"IsClosed": "true", "PlanNum": 0}, False, id="a-closed-plan"),
        pytest.param({"IsClosed": "false", "PlanNum": 3}, False, id="an-insurance-payment-plan"),
    ],
)
def test_an_open_patient_payment_plan_sets_on_payment_plan(plan, on_plan):
    assert plan_is_open(plan) is on_plan
    document, _ = feed(read_of([od_patient(10)], aging={10: AGING}, plans={10: [plan]}))
    assert document["patients"][0]["on_payment_plan"] is on_plan


def test_open_claims_and_the_familys_last_visit_are_on_the_guarantor():
    read = read_of([od_patient(10), od_patient(11, 10)], aging={10: AGING}, claims={10: 2},
                   visits={10: date(2026, 3, 1), 11: date(2026, 10, 5)})  # fmt: skip
    guarantor, dependent = feed(read)[0]["patients"]
    assert guarantor["open_claims"] == 2
    # R7 looks at the family's most recent visit: the dependent's visit brought new charges to the family.
    assert guarantor["last_visit_date"] == "2026-10-05"
    assert dependent["last_visit_date"] == "2026-10-05"


def test_a_visit_on_file_is_kept_when_no_newer_one_was_read():
    known = Known(last_visit={"10": date(2023, 1, 9)})
    guarantor = feed(read_of([od_patient(10)]), known)[0]["patients"][0]
    assert guarantor["last_visit_date"] == "2023-01-09"


@pytest.mark.parametrize(
    ("fields", "sent_by_pms"),
    [
        pytest.param({"Mode_": "Mail"}, "mail", id="mailed"),
        pytest.param({"Mode_": "Electronic"}, "mail", id="electronic-billing-is-mailed-by-the-service"),
        pytest.param({"Mode_": "Email"}, "email", id="emailed"),
        pytest.param({"Mode_": "InPerson"}, "none", id="handed-in-person"),
        pytest.param({"Mode_": "Mail", "IsSent": "false"}, "none", id="not-sent-yet"),
    ],
)
def test_the_statements_send_mode_says_what_the_pms_already_sent(fields, sent_by_pms):
    read = read_of(
        [od_patient(10, BalTotal=140.0)], aging={10: AGING}, statements=[od_statement(1, 10, **fields)]
    )
    (statement,) = feed(read)[0]["statements"]
    assert statement["sent_by_pms"] == sent_by_pms


def test_a_family_has_one_bill_that_follows_its_latest_statement():
    statements = [od_statement(1, 10, DateSent="2026-09-20", BalTotal=300.0), od_statement(7, 10, DateSent="2026-11-20"),
                  od_statement(8, 10, DateSent="2026-11-22", IsReceipt="true"), od_statement(9, 10, IsInvoice="true")]  # fmt: skip
    read = read_of([od_patient(10, BalTotal=140.0)], aging={10: AGING}, statements=statements)
    (statement,) = feed(read)[0]["statements"]
    assert statement == {"bill_id": "OD-10", "guarantor_id": "10", "statement_date": "2026-11-20",
                         "amount_due": "120.00", "sent_by_pms": "mail"}  # fmt: skip


def test_a_statement_for_a_dependent_is_the_guarantors_and_remembers_the_dependent():
    read = read_of([od_patient(10), od_patient(11, 10)], aging={10: AGING},
                   statements=[od_statement(3, 11, SinglePatient="true")])  # fmt: skip
    (statement,) = feed(read)[0]["statements"]
    assert (statement["guarantor_id"], statement["patient_id"]) == ("10", "11")


def test_the_amount_due_is_the_statements_less_what_was_paid_since():
    # The statement asked 140 - 20; the family has since paid 50 at the front desk: 70 of patient portion left.
    paid = {**AGING, "Bal_0_30": 0.0, "Bal_31_60": 0.0, "BalOver90": 90.0}
    read = read_of([od_patient(10)], aging={10: paid}, statements=[od_statement(1, 10)])
    assert feed(read)[0]["statements"][0]["amount_due"] == "70.00"


def test_a_statement_without_a_recorded_balance_is_not_a_bill():
    read = read_of([od_patient(10)], aging={10: AGING}, statements=[od_statement(1, 10, IsBalValid="false")])
    document, notes = feed(read)
    assert document["statements"] == []
    assert "IsBalValid false" in notes[0]["message"]


def test_an_old_statement_starts_no_campaign_but_a_running_one_keeps_following_it():
    old = read_of(
        [od_patient(10)], aging={10: AGING}, statements=[od_statement(1, 10, DateSent="2026-06-01")]
    )
    assert feed(old)[0]["statements"] == []
    assert feed(old, Known(owing_bills=frozenset({"OD-10"})))[0]["statements"][0]["bill_id"] == "OD-10"


@pytest.mark.parametrize(
    ("raw", "day"),
    [
        ("2026-11-24", date(2026, 11, 24)),
        ("0001-01-01", None),
        ("", None),
        ("2021-12-08 15:34:34", date(2021, 12, 8)),
    ],
)
def test_od_date(raw, day):
    assert od_date(raw) == day


def test_stamps_and_cents():
    assert od_stamp("2024-07-26 10:58:28") == "2024-07-26 10:58:28"
    assert od_stamp("not a time") == ""
    assert stamp_before("2026-11-24 00:00:00") == "2026-11-23 23:59:59"
    assert cents(Decimal("0.30000000000000004")) == (Decimal("0.30"), False)
    assert cents(Decimal("12.345")) == (Decimal("12.35"), True)


@pytest.mark.parametrize(("raw", "code"), [("spa", "es"), ("eng", "en"), ("vie", "vi"), ("chi", "zh"), ("es", "es"),
                                           ("", ""), ("Klingon", ""), ("hmn", "")])  # fmt: skip
def test_iso_639_1(raw, code):
    assert iso_639_1(raw) == code


def test_a_row_of_the_aging_report_reads_as_the_account_modules_aging():
    """Reports GET Aging's example row (apireports.html): PatientPortion = BalTotal - InsPayEst - InsWoEst."""
    row = {"PatNum": 13, "patName": "Copay, Candi ", "Bal_0_30": 0, "Bal_31_60": 0, "Bal_61_90": 0, "BalOver90": 140,
           "BalTotal": 140, "InsWoEst": 30, "InsPayEst": 35, "PatientPortion": 75}  # fmt: skip
    aging = report_aging(row)
    assert aging["InsEst"] == 65 and patient_portion(aging) == 75
    guarantor = feed(read_of([od_patient(13)], aging={13: aging}))[0]["patients"][0]
    assert guarantor["balance"] == {"0_30": "0.00", "31_60": "0.00", "61_90": "0.00", "over_90": "140.00",
                                    "insurance_estimate": "65.00"}  # fmt: skip
