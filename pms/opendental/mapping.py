"""Open Dental records to the feed of SPEC §3, by Open Dental's own conventions (C2, I1a).

Patients (https://www.opendental.com/site/apipatients.html): PatNum and Guarantor are the ids; ``Preferred``
is the preferred name; ``WirelessPhone`` the mobile, ``HmPhone``/``WkPhone`` the call-list phones; a Birthdate
of 0001-01-01 is none; ``TxtMsgOk`` "No" is the PMS's SMS opt-out and "Yes" a recorded consent; ``Language``
is ISO 639-2; PatStatus "Deceased" means nothing is sent (deceased, do_not_contact); a billing type of the
organization's no-contact list (no statements, collections) is do_not_contact.

Aging (https://www.opendental.com/site/apiaccountmodules.html, AccountModules GET Aging, or a row of the A/R
aging report, apireports.html, in the same shape) is the family's and goes on the guarantor only: Bal_0_30,
Bal_31_60, Bal_61_90, BalOver90, and InsEst as the insurance estimate. A family the aging report does not
list owes nothing: zeros.

Payment plans (https://www.opendental.com/site/apipayplans.html): an open patient plan sets on_payment_plan.
Claims (https://www.opendental.com/site/apiclaims.html): the family's claims not yet received are open_claims.

Statements (https://www.opendental.com/site/apistatements.html): a family's dunning campaign follows its
latest statement, as one bill per family (``OD-<guarantor PatNum>``): Open Dental bills the same family
balance again each month, and a new statement is the same debt (the organization's reset settings decide
whether its date restarts the schedule, D9). Its amount is what the statement asked (BalTotal - InsEst), less
what has been paid since (never more than the family's patient portion now). ``Mode_`` with ``IsSent`` says
how Open Dental already sent it (sent_by_pms): Mail, and Electronic (a billing service prints and mails it),
are mail; Email is email; InPerson, or not sent yet, is none. Receipts, invoices and statements without a
recorded balance (IsBalValid false) are not bills.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pms.opendental.reader import Known, OpenDentalRead, plan_is_open
from pms.opendental.values import cents, iso_639_1, od_bool, od_date, od_money

BILL_PREFIX = "OD-"
# A statement older than any dunning schedule would only ever produce a final notice at once: an older one
# starts no campaign (a campaign already running keeps following its family's latest statement).
STATEMENT_LOOKBACK = timedelta(days=120)
SENT_BY_MODE = {"Mail": "mail", "Electronic": "mail", "Email": "email"}
TXT_MSG_CONSENT = {"Yes": "yes", "No": "no"}


@dataclass
class MappingNotes:
    """The connector's warnings, one per kind with a count and a first example (like the importer's)."""

    counts: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, kind: str, example: str) -> None:
        if kind in self.counts:
            self.counts[kind][0] += 1
        else:
            self.counts[kind] = [1, example]

    def as_list(self) -> list[dict[str, str]]:
        out = []
        for kind, (count, example) in self.counts.items():
            more = f" (and {count - 1} more)" if count > 1 else ""
            out.append({"pointer": "", "message": f"Open Dental: {kind}: {example}{more}"})
        return out


def bill_id_for(guarantor: int) -> str:
    return f"{BILL_PREFIX}{guarantor}"


def _money(value: Any, notes: MappingNotes, what: str) -> Decimal:
    amount, off = cents(od_money(value))
    if off:
        notes.add("an amount with more than 2 decimals was rounded to the cent", f"{what} {value}")
    return amount


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def patient_record(
    patient: dict[str, Any], *, no_contact_types: frozenset[str], last_visit: date | None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": str(patient["PatNum"]),
        "guarantor_id": str(patient["Guarantor"]),
        "first_name": _text(patient.get("FName")),
        "last_name": _text(patient.get("LName")),
        "email": _text(patient.get("Email")),
        "mobile_phone": _text(patient.get("WirelessPhone")),
        "home_phone": _text(patient.get("HmPhone")),
        "work_phone": _text(patient.get("WkPhone")),
        "address": {
            "line1": _text(patient.get("Address")), "line2": _text(patient.get("Address2")),
            "city": _text(patient.get("City")), "state": _text(patient.get("State")), "zip": _text(patient.get("Zip")),
        },
    }  # fmt: skip
    birthdate = od_date(patient.get("Birthdate"))
    if birthdate is not None:
        record["date_of_birth"] = birthdate.isoformat()
    if last_visit is not None:
        record["last_visit_date"] = last_visit.isoformat()
    if _text(patient.get("Preferred")):
        record["preferred_name"] = _text(patient.get("Preferred"))
    language = iso_639_1(patient.get("Language"))
    if language:
        record["language"] = language
    txt = _text(patient.get("TxtMsgOk"))
    record["sms_consent"] = TXT_MSG_CONSENT.get(txt, "unknown")
    if txt == "No":
        record["sms_opt_out"] = True
    deceased = patient.get("PatStatus") == "Deceased"
    if deceased:
        record["deceased"] = True
    if deceased or _text(patient.get("BillingType")).lower() in no_contact_types:
        record["do_not_contact"] = True
    return record


def _latest_statements(read: OpenDentalRead, notes: MappingNotes) -> dict[int, tuple[dict[str, Any], date]]:
    latest: dict[int, tuple[dict[str, Any], date]] = {}
    for statement in read.statements:
        if od_bool(statement.get("IsReceipt")) or od_bool(statement.get("IsInvoice")):
            continue
        sent = od_date(statement.get("DateSent"))
        family = read.family_of.get(int(statement.get("PatNum") or 0))
        if sent is None or family is None:
            continue
        if not od_bool(statement.get("IsBalValid")):
            notes.add("a statement without a recorded balance (IsBalValid false) is not a bill",
                      f"StatementNum {statement.get('StatementNum')}")  # fmt: skip
            continue
        key = (sent, int(statement.get("StatementNum") or 0))
        current = latest.get(family)
        if current is None or key > (current[1], int(current[0].get("StatementNum") or 0)):
            latest[family] = (statement, sent)
    return latest


def build_feed(
    *, read: OpenDentalRead, known: Known, organization: str, generated_at: str, today: date,
    no_contact_types: frozenset[str],
) -> tuple[dict[str, Any], list[dict[str, str]]]:  # fmt: skip
    """The feed document for what ``read`` holds, and the connector's warnings."""
    notes = MappingNotes()
    family_visit: dict[int, date] = {}
    for num, family in read.family_of.items():
        seen = [d for d in (read.visits.get(num), known.last_visit.get(str(num))) if d is not None]
        if seen:
            family_visit[family] = max([*seen, family_visit.get(family, seen[0])])

    patients = []
    portions: dict[int, Decimal] = {}
    for num in sorted(read.patients):
        patient = read.patients[num]
        own_visit = max(
            [d for d in (read.visits.get(num), known.last_visit.get(str(num))) if d], default=None
        )
        family = read.family_of[num]
        is_guarantor = family == num
        # R7 asks about the family's most recent visit: a dependent's visit is the family's new charges.
        record = patient_record(
            patient, no_contact_types=no_contact_types,
            last_visit=family_visit.get(num) if is_guarantor else own_visit,
        )  # fmt: skip
        if is_guarantor:
            aging = read.aging.get(num)
            zero = Decimal("0.00")
            balance = {
                "0_30": zero,
                "31_60": zero,
                "61_90": zero,
                "over_90": zero,
                "insurance_estimate": zero,
            }
            if aging is not None:
                for key, name in (("0_30", "Bal_0_30"), ("31_60", "Bal_31_60"), ("61_90", "Bal_61_90"),
                                  ("over_90", "BalOver90"), ("insurance_estimate", "InsEst")):  # fmt: skip
                    balance[key] = _money(aging.get(name), notes, f"{name} of family {num}")
            portions[num] = max(
                sum((balance[k] for k in ("0_30", "31_60", "61_90", "over_90")), Decimal(0))
                - balance["insurance_estimate"],
                Decimal(0),
            )
            record["balance"] = {key: str(value) for key, value in balance.items()}
            record["on_payment_plan"] = any(plan_is_open(plan) for plan in read.plans.get(num, []))
            record["open_claims"] = read.open_claims.get(num, 0)
        patients.append(record)

    statements = []
    for family, (statement, sent) in sorted(_latest_statements(read, notes).items()):
        bill_id = bill_id_for(family)
        if family not in read.families or family not in portions:
            continue
        if sent < today - STATEMENT_LOOKBACK and bill_id not in known.owing_bills:
            continue
        asked = _money(
            statement.get("BalTotal"), notes, f"BalTotal of statement {statement.get('StatementNum')}"
        )
        asked -= _money(
            statement.get("InsEst"), notes, f"InsEst of statement {statement.get('StatementNum')}"
        )
        sent_by = (
            SENT_BY_MODE.get(_text(statement.get("Mode_")), "none")
            if od_bool(statement.get("IsSent"))
            else "none"
        )
        row: dict[str, Any] = {
            "bill_id": bill_id, "guarantor_id": str(family), "statement_date": sent.isoformat(),
            "amount_due": str(min(asked, portions[family])), "sent_by_pms": sent_by,
        }  # fmt: skip
        subject = int(statement.get("PatNum") or 0)
        if subject != family:
            row["patient_id"] = str(subject)
        statements.append(row)

    document = {"organization": organization, "generated_at": generated_at, "patients": patients,
                "statements": statements}  # fmt: skip
    return document, notes.as_list()
