"""Bulk payment request eligibility: R1-R11 (one test per rule), R9 (one query) and R12 (explain agrees)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command

from payments.eligibility import RULES, bulk_list_rows, eligible_guarantors, explain_guarantor
from payments.models import PaymentSettings, RequestMode
from practices.importer import feed_import
from practices.models import Bill, BillState, Patient
from tests.factories import (
    AccountFactory,
    GuarantorFactory,
    OrganizationFactory,
    feed_patient,
    feed_statement,
)
from tests.payments.factories import BillFactory, PaymentRequestFactory, SnoozeFactory

pytestmark = pytest.mark.django_db

ON = date(2026, 11, 24)
VISIT = date(2026, 10, 1)
LIFTED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

# The organization's settings for the scenario set: R3 minimum 10.00, R4 without over_90, R10 at most 2 claims.
SETTINGS = {"min_payment_amount": Decimal("10.00"), "eligible_aging": ["0_30", "31_60", "61_90"],
            "max_open_claims": 2}  # fmt: skip

# (guarantor id, the rules it fails, how it is built). Each "ok-" guarantor is eligible; each other one fails
# exactly the rules listed: most fail one rule alone, a few fail two to vary the mix.
SCENARIOS: list[tuple[str, set[str], dict[str, Any]]] = [
    ("ok-basic", set(), {}),
    ("ok-family", set(), {}),
    ("ok-no-contact", set(), {"patient": {"email": "", "mobile_phone": ""}}),
    ("ok-portion-just-above", set(), {"account": {"patient_portion": Decimal("10.01")}}),
    ("ok-aging-31", set(), {"account": {"aging_category": "31_60"}}),
    ("ok-aging-61", set(), {"account": {"aging_category": "61_90"}}),
    ("ok-claims-at-limit", set(), {"patient": {"open_claims": 2}}),
    ("ok-snooze-expired", set(), {"snoozes": [{"until": ON}]}),
    ("ok-snooze-lifted", set(), {"snoozes": [{"until": date(2027, 1, 1), "lifted_at": LIFTED}]}),
    ("ok-old-campaign", set(), {"bills": [{"closed": True, "effective_created_date": date(2026, 9, 30)}]}),
    ("ok-two-old-campaigns", set(), {"bills": [{"paid": True, "effective_created_date": date(2026, 6, 1)},
                                               {"closed": True, "effective_created_date": date(2026, 8, 1)}]}),
    ("ok-old-single-request", set(),
     {"requests": [{"mode": RequestMode.SINGLE, "request_date": date(2026, 9, 15), "closed": True}]}),
    # A bulk request after the visit whose clock was moved back: R8 is about single requests only.
    ("ok-bulk-request-moved", set(), {"requests": [{"mode": RequestMode.BULK, "request_date": date(2026, 10, 5),
                                                    "closed": True, "moved_to": date(2026, 9, 1)}]}),
    ("ok-no-visit-no-campaign", set(), {"patient": {"last_visit_date": None}}),
    ("ok-visit-after-campaign", set(), {"patient": {"last_visit_date": date(2026, 11, 21)},
                                        "bills": [{"paid": True, "effective_created_date": date(2026, 11, 20)}]}),
    ("ok-claims-zero", set(), {"patient": {"open_claims": 0}}),
    ("r1-dependent", {"R1"}, {"dependent_of": "ok-family"}),
    ("r1-dependent-no-account", {"R1", "R3", "R4"}, {"dependent_of": "ok-family", "account": None}),
    ("r2-plan", {"R2"}, {"patient": {"on_payment_plan": True}}),
    ("r3-equal-minimum", {"R3"}, {"account": {"patient_portion": Decimal("10.00")}}),
    ("r3-below-minimum", {"R3"}, {"account": {"patient_portion": Decimal("5.00")}}),
    ("r3-insurance-covers", {"R3"}, {"account": {"patient_portion": Decimal("0.00")}}),
    ("r3-r4-no-account", {"R3", "R4"}, {"account": None}),
    ("r4-over-90", {"R4"}, {"account": {"aging_category": "over_90"}}),
    ("r4-no-category", {"R4"}, {"account": {"aging_category": ""}}),
    ("r5-snoozed", {"R5"}, {"snoozes": [{"until": date(2026, 11, 25)}]}),
    ("r5-snoozed-again", {"R5"}, {"snoozes": [{"until": date(2026, 11, 30), "lifted_at": LIFTED},
                                               {"until": date(2027, 1, 1)}]}),
    ("r6-active-statement", {"R6"}, {"bills": [{"effective_created_date": date(2026, 9, 1)}]}),
    ("r6-active-request", {"R6"}, {"requests": [{"mode": RequestMode.BULK, "request_date": date(2026, 9, 1)}]}),
    ("r6-r7-active-since-visit", {"R6", "R7"}, {"bills": [{"effective_created_date": date(2026, 11, 20)}]}),
    ("r7-closed-since-visit", {"R7"}, {"bills": [{"closed": True, "effective_created_date": date(2026, 10, 15)}]}),
    ("r7-closed-on-visit-day", {"R7"}, {"bills": [{"closed": True, "effective_created_date": VISIT}]}),
    ("r7-paid-request-since-visit", {"R7"},
     {"requests": [{"mode": RequestMode.BULK, "request_date": date(2026, 10, 20), "paid": True}]}),
    ("r7-one-of-two", {"R7"}, {"bills": [{"closed": True, "effective_created_date": date(2026, 9, 1)},
                                         {"paid": True, "effective_created_date": date(2026, 11, 2)}]}),
    ("r7-never-visited", {"R7"},
     {"patient": {"last_visit_date": None}, "bills": [{"paid": True, "effective_created_date": date(2025, 1, 1)}]}),
    # The single request's campaign was closed and its clock moved before the visit: only R8 sees it.
    ("r8-single-closed-moved", {"R8"}, {"requests": [{"mode": RequestMode.SINGLE, "request_date": date(2026, 10, 10),
                                                      "closed": True, "moved_to": date(2026, 9, 1)}]}),
    ("r8-single-on-visit-day", {"R8"}, {"requests": [{"mode": RequestMode.SINGLE, "request_date": VISIT,
                                                      "paid": True, "moved_to": date(2026, 8, 1)}]}),
    ("r7-r8-never-visited-single", {"R7", "R8"},
     {"patient": {"last_visit_date": None},
      "requests": [{"mode": RequestMode.SINGLE, "request_date": date(2026, 3, 1), "closed": True}]}),
    ("r10-over-limit", {"R10"}, {"patient": {"open_claims": 3}}),
    ("r10-many-claims", {"R10"}, {"patient": {"open_claims": 40}}),
    ("r11-do-not-contact", {"R11"}, {"patient": {"do_not_contact": True}}),
    ("r2-r11-plan-and-dnc", {"R2", "R11"}, {"patient": {"on_payment_plan": True, "do_not_contact": True}}),
    ("r2-r5-plan-and-snoozed", {"R2", "R5"},
     {"patient": {"on_payment_plan": True}, "snoozes": [{"until": date(2026, 12, 24)}]}),
    ("r4-r11-over-90-dnc", {"R4", "R11"},
     {"patient": {"do_not_contact": True}, "account": {"aging_category": "over_90"}}),
]  # fmt: skip


def build(org: Any, key: str, spec: dict[str, Any], made: dict[str, Patient]) -> Patient:
    patient_fields = {"last_visit_date": VISIT, **spec.get("patient", {})}
    if "dependent_of" in spec:
        head = made[spec["dependent_of"]]
        patient = GuarantorFactory.create(organization=org, external_id=key, guarantor=head,
                                   guarantor_external_id=head.external_id, is_guarantor=False,
                                   **patient_fields)  # fmt: skip
    else:
        patient = GuarantorFactory.create(organization=org, external_id=key, **patient_fields)
    account = spec.get("account", {})
    if account is not None:
        AccountFactory.create(guarantor=patient, **account)
    for bill in spec.get("bills", []):
        BillFactory.create(guarantor=patient, **bill)
    for request in spec.get("requests", []):
        request = dict(request)
        moved_to = request.pop("moved_to", None)
        traits = {name: request.pop(name) for name in ("closed", "paid") if name in request}
        made_request = PaymentRequestFactory.create(
            guarantor=patient, **request, **{f"bill__{k}": v for k, v in traits.items()}
        )
        if moved_to:
            # A reset moves the campaign's clock (D9); the request keeps its own date.
            Bill.objects.filter(pk=made_request.bill_id).update(effective_created_date=moved_to)
    for snooze in spec.get("snoozes", []):
        SnoozeFactory.create(guarantor=patient, **snooze)
    return patient


@pytest.fixture
def org():
    organization = OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    PaymentSettings.objects.create(organization=organization, **SETTINGS)
    return organization


@pytest.fixture
def world(org) -> dict[str, Patient]:
    made: dict[str, Patient] = {}
    for key, _, spec in SCENARIOS:
        made[key] = build(org, key, spec, made)
    return made


def listed(org: Any, on: date = ON) -> set[str]:
    return set(eligible_guarantors(organization=org, on=on).values_list("external_id", flat=True))


def failing(org: Any, patient: Patient, on: date = ON) -> set[str]:
    report = explain_guarantor(organization=org, guarantor=patient, on=on)
    return {rule["rule"] for rule in report["rules"] if not rule["passed"]}


def assert_excluded_by(org: Any, world: dict[str, Patient], rule: str, *keys: str) -> None:
    """Each of ``keys`` is off the list and fails ``rule`` alone: the list relies on that rule."""
    names = listed(org)
    for key in keys:
        assert key not in names, key
        assert failing(org, world[key]) == {rule}, key
    assert "ok-basic" in names


# --- one test per rule ------------------------------------------------------------------------------------


def test_r1_dependents_never_appear(org, world):
    assert_excluded_by(org, world, "R1", "r1-dependent")
    assert "ok-family" in listed(org)


def test_r2_guarantors_on_a_payment_plan_are_left_out(org, world):
    assert_excluded_by(org, world, "R2", "r2-plan")


def test_r3_the_patient_portion_must_exceed_the_minimum_strictly(org, world):
    assert_excluded_by(org, world, "R3", "r3-equal-minimum", "r3-below-minimum", "r3-insurance-covers")
    assert "ok-portion-just-above" in listed(org)


def test_r4_only_eligible_aging_categories_are_listed(org, world):
    assert_excluded_by(org, world, "R4", "r4-over-90", "r4-no-category")
    assert {"ok-aging-31", "ok-aging-61"} <= listed(org)


def test_r5_a_snoozed_guarantor_is_left_out_until_the_re_enrol_date(org, world):
    assert_excluded_by(org, world, "R5", "r5-snoozed", "r5-snoozed-again")
    assert {"ok-snooze-expired", "ok-snooze-lifted"} <= listed(org)
    # Active while date < until: on the re-enrol date itself the guarantor is back.
    assert "r5-snoozed" in listed(org, on=date(2026, 11, 25))


def test_r6_a_guarantor_in_an_active_campaign_of_any_source_is_left_out(org, world):
    assert_excluded_by(org, world, "R6", "r6-active-statement", "r6-active-request")


def test_r7_a_campaign_started_on_or_after_the_last_visit_excludes(org, world):
    assert_excluded_by(
        org, world, "R7",
        "r7-closed-since-visit", "r7-closed-on-visit-day", "r7-paid-request-since-visit", "r7-one-of-two",
        "r7-never-visited",
    )  # fmt: skip
    assert {"ok-old-campaign", "ok-two-old-campaigns", "ok-visit-after-campaign"} <= listed(org)
    assert "ok-no-visit-no-campaign" in listed(org)


def test_r8_a_single_request_since_the_last_visit_excludes_even_when_its_campaign_moved(org, world):
    assert_excluded_by(org, world, "R8", "r8-single-closed-moved", "r8-single-on-visit-day")
    assert {"ok-old-single-request", "ok-bulk-request-moved"} <= listed(org)


def test_r10_more_open_claims_than_the_limit_excludes(org, world):
    assert_excluded_by(org, world, "R10", "r10-over-limit", "r10-many-claims")
    assert "ok-claims-at-limit" in listed(org)


def test_r10_without_a_limit_open_claims_do_not_matter(org, world):
    PaymentSettings.objects.filter(organization=org).update(max_open_claims=None)
    assert {"r10-over-limit", "r10-many-claims"} <= listed(org)
    assert failing(org, world["r10-many-claims"]) == set()


def test_r11_do_not_contact_excludes(org, world):
    assert_excluded_by(org, world, "R11", "r11-do-not-contact")


def test_contact_details_are_not_a_condition(org, world):
    assert "ok-no-contact" in listed(org)


def test_defaults_apply_without_a_settings_row():
    organization = OrganizationFactory.create(slug="fresh")
    cheap = AccountFactory.create(guarantor__organization=organization, patient_portion=Decimal("0.01"),
                           aging_category="over_90").guarantor  # fmt: skip
    claims = AccountFactory.create(guarantor__organization=organization, guarantor__open_claims=99).guarantor
    zero = AccountFactory.create(
        guarantor__organization=organization, patient_portion=Decimal("0.00")
    ).guarantor
    names = listed(organization)
    assert names == {cheap.external_id, claims.external_id}
    assert failing(organization, zero) == {"R3"}


def test_other_organizations_guarantors_never_appear(org, world):
    other = OrganizationFactory.create(slug="other-practice")
    stranger = AccountFactory.create(guarantor__organization=other).guarantor
    assert stranger.external_id not in listed(org)
    assert listed(other) == {stranger.external_id}
    with pytest.raises(Patient.DoesNotExist):
        explain_guarantor(organization=org, guarantor=stranger, on=ON)


# --- R12: explain agrees with the list --------------------------------------------------------------------


def test_explain_agrees_with_the_list_for_every_guarantor(org, world):
    assert len(world) >= 40
    names = listed(org)
    for key, expected_failures, _ in SCENARIOS:
        report = explain_guarantor(organization=org, guarantor=world[key], on=ON)
        assert report["guarantor_id"] == key
        assert report["eligible"] == (key in names), key
        assert {r["rule"] for r in report["rules"] if not r["passed"]} == expected_failures, key
    assert names == {key for key, failures, _ in SCENARIOS if not failures}


def test_explain_lists_every_checked_rule_with_the_value_seen_and_the_threshold(org, world):
    report = explain_guarantor(organization=org, guarantor=world["r3-equal-minimum"], on=ON)
    assert [r["rule"] for r in report["rules"]] == [
        "R1",
        "R2",
        "R3",
        "R4",
        "R5",
        "R6",
        "R7",
        "R8",
        "R10",
        "R11",
    ]
    assert [r["rule"] for r in report["rules"]] == [rule.id for rule in RULES]
    details = {r["rule"]: r["detail"] for r in report["rules"]}
    assert details["R3"] == "patient portion 10.00 is not above minimum payment amount 10.00"
    assert details["R4"] == "aging category 0_30; eligible categories: 0_30, 31_60, 61_90"
    assert details["R10"] == "open insurance claims 0; allowed: at most 2"

    moved = explain_guarantor(organization=org, guarantor=world["r8-single-closed-moved"], on=ON)
    details = {r["rule"]: r["detail"] for r in moved["rules"]}
    assert (
        details["R8"] == "latest single payment request on 2026-10-10, on or after the last visit 2026-10-01"
    )
    assert (
        details["R7"].startswith("latest campaign R-")
        and "2026-09-01, before the last visit" in details["R7"]
    )

    snoozed = explain_guarantor(organization=org, guarantor=world["r5-snoozed-again"], on=ON)
    r5 = next(r for r in snoozed["rules"] if r["rule"] == "R5")
    assert r5 == {"rule": "R5", "passed": False,
                  "detail": "snoozed until 2027-01-01 (Insurance still processing); date 2026-11-24"}  # fmt: skip

    never = explain_guarantor(organization=org, guarantor=world["r7-never-visited"], on=ON)
    r7 = next(r for r in never["rules"] if r["rule"] == "R7")
    assert "no visit date on file" in r7["detail"] and "any campaign excludes" in r7["detail"]


# --- R9: one set-based query --------------------------------------------------------------------------------


def test_the_list_is_one_query_whatever_the_number_of_guarantors(org, world, django_assert_num_queries):
    queryset = eligible_guarantors(organization=org, on=ON)
    with django_assert_num_queries(1):
        rows = list(queryset.values_list("external_id", "account__patient_portion"))
    assert len(rows) == len([s for s in SCENARIOS if not s[1]])
    with django_assert_num_queries(2):  # the settings row, then the list
        bulk_list_rows(organization=org, on=ON)
    with django_assert_num_queries(2):
        explain_guarantor(organization=org, guarantor=world["ok-basic"], on=ON)


# --- bulk_list / bulk_explain commands ---------------------------------------------------------------------


def run(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command(*args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def imported(feed_bytes):
    organization = OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    balance = {"0_30": "0", "31_60": "87.5", "61_90": "0", "over_90": "0", "insurance_estimate": "0"}
    summary = feed_import(
        raw=feed_bytes(
            patients=[
                feed_patient("P2", first_name="Bea", last_name="Ruiz", last_visit_date=None),
                feed_patient("P10", first_name="Ana", last_name="Diaz", balance=balance),
                feed_patient("P3", guarantor_id="P2", first_name="Kid"),
                feed_patient("P4", on_payment_plan=True),
                feed_patient("P5", open_claims=1),
                feed_patient("P6"),
            ],
            statements=[feed_statement("S-6", "P6")],
        )
    )
    assert summary.rejected == 0
    return organization


def test_bulk_list_json_is_the_exact_contract(imported):
    code, out = run("bulk_list", "--org", "smile-dental", "--date", "2026-11-24", "--json")
    assert code == 0
    assert json.loads(out) == [
        {"guarantor_id": "P10", "name": "Ana Diaz", "patient_portion": "87.50", "aging_category": "31_60",
         "last_visit_date": "2026-10-01"},
        {"guarantor_id": "P2", "name": "Bea Ruiz", "patient_portion": "100.00", "aging_category": "0_30",
         "last_visit_date": None},
        {"guarantor_id": "P5", "name": "Ana Diaz", "patient_portion": "100.00", "aging_category": "0_30",
         "last_visit_date": "2026-10-01"},
    ]  # fmt: skip


def test_bulk_list_defaults_to_the_organizations_today(imported):
    SnoozeFactory.create(guarantor=Patient.objects.get(external_id="P5"), until=date(2026, 11, 25))
    # 03:00 UTC on the 25th is still the 24th in Denver: P5 is snoozed there.
    with time_machine.travel(datetime(2026, 11, 25, 3, 0, tzinfo=UTC), tick=False):
        code, out = run("bulk_list", "--org", "smile-dental", "--json")
    assert code == 0
    assert [row["guarantor_id"] for row in json.loads(out)] == ["P10", "P2"]


def test_bulk_list_human_output(imported):
    code, out = run("bulk_list", "--org", "smile-dental", "--date", "2026-11-24")
    assert code == 0
    assert "P10" in out and "87.50" in out
    assert out.strip().endswith("3 eligible guarantor(s) on 2026-11-24")


@pytest.mark.parametrize(
    "args",
    [
        ("--org", "nope"),
        ("--org", "smile-dental", "--date", "24/11/2026"),
        ("--org", "smile-dental", "--date", "20261124"),
        ("--org", "smile-dental", "--date", "2026-02-30"),
    ],
)
def test_bulk_list_exits_2_on_bad_input(imported, args):
    assert run("bulk_list", *args, "--json") == (2, "")


def test_bulk_explain_json(imported):
    code, out = run(
        "bulk_explain", "--org", "smile-dental", "--guarantor", "P6", "--date", "2026-11-24", "--json"
    )
    assert code == 0
    report = json.loads(out)
    assert report["guarantor_id"] == "P6"
    assert report["eligible"] is False
    assert [r["rule"] for r in report["rules"] if not r["passed"]] == ["R6", "R7"]
    assert set(report["rules"][0]) == {"rule", "passed", "detail"}


def test_bulk_explain_of_a_dependent_names_its_guarantor(imported):
    code, out = run("bulk_explain", "--org", "smile-dental", "--guarantor", "P3", "--json")
    assert code == 0
    r1 = json.loads(out)["rules"][0]
    assert r1 == {"rule": "R1", "passed": False,
                  "detail": "a dependent of guarantor P2: its balance rolls up to the guarantor"}  # fmt: skip


def test_bulk_explain_human_output(imported):
    code, out = run("bulk_explain", "--org", "smile-dental", "--guarantor", "P10", "--date", "2026-11-24")
    assert code == 0
    assert out.splitlines()[0] == "P10 is eligible on 2026-11-24"
    assert len(out.splitlines()) == 1 + len(RULES)


@pytest.mark.parametrize(
    "args",
    [
        ("--org", "smile-dental", "--guarantor", "P99"),
        ("--org", "nope", "--guarantor", "P10"),
        ("--org", "smile-dental", "--guarantor", "P10", "--date", "tomorrow"),
    ],
)
def test_bulk_explain_exits_2_on_bad_input(imported, args):
    assert run("bulk_explain", *args, "--json") == (2, "")


def test_a_closed_campaign_from_the_feed_keeps_excluding_until_the_next_visit(imported, feed_bytes):
    # I6 closes P6's campaign when it goes on a plan; off the plan again, R7 still excludes it until a visit.
    statements = [feed_statement("S-6", "P6")]
    feed_import(raw=feed_bytes(generated_at="2026-11-25T06:00:00Z", statements=statements,
                               patients=[feed_patient("P6", on_payment_plan=True)]))  # fmt: skip
    feed_import(raw=feed_bytes(generated_at="2026-11-26T06:00:00Z", statements=statements,
                               patients=[feed_patient("P6")]))  # fmt: skip
    guarantor = Patient.objects.get(external_id="P6")
    assert guarantor.bills.get().state == BillState.CLOSED
    assert failing(imported, guarantor, on=date(2026, 11, 26)) == {"R7"}
    feed_import(raw=feed_bytes(generated_at="2026-11-27T06:00:00Z", statements=statements,
                               patients=[feed_patient("P6", last_visit_date="2026-11-26")]))  # fmt: skip
    assert "P6" in listed(imported, on=date(2026, 11, 27))
