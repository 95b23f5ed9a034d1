"""The after-final worklist (SPEC §13.1): A1 (who is on it, in which order, with what), A2 (each outcome's
effect, audited T5, refused once a bill has left the list), T1/T2 on the dashboard, the collections export
and the ``after_final`` command (§10).

The bills are walked through the real engine day by day (``run_dunning``, then ``send_due``'s service, which
without provider credentials marks each text and email sent, the embedded default), so a "final notice" is
what the engine decided and the outbox sent. The cheaper ``completed_bill`` helper stands in where many bills
are needed."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.urls import reverse

from dunning.after_final import (
    COLLECTIONS_COLUMNS,
    AfterFinalError,
    OutcomeNotAllowed,
    after_final_promised,
    after_final_record,
    after_final_rows,
    after_final_worklist,
    collections_export_csv,
    collections_export_rows,
    worklist_rows,
)
from dunning.engine import run_dunning
from dunning.models import (
    Action,
    AfterFinalOutcome,
    DunningDecision,
    DunningSettings,
    Preset,
    PresetStep,
)
from notifications.models import Kind, Message, State
from notifications.outbox import messages_send_due
from payments.eligibility import eligible_guarantors
from payments.models import Snooze
from practices.importer.service import feed_import
from practices.models import AuditEvent, Bill, BillState, ClosedReason, Role
from tests.factories import (
    AccountFactory,
    GuarantorFactory,
    MembershipFactory,
    OrganizationFactory,
    feed_patient,
)
from tests.payments.factories import BillFactory

pytestmark = pytest.mark.django_db

STEPS = [
    (0, "statement", "email"), (0, "statement", "sms"), (15, "reminder", "sms"), (30, "final", "email"),
    (30, "final", "sms"),
]  # fmt: skip
FINAL_AGE = 30
TODAY = date(2026, 6, 1)


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 18, 0, tzinfo=UTC)  # noon in Denver: outside quiet hours


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(noon(TODAY), tick=False) as traveller:
        yield traveller


@pytest.fixture
def preset() -> Preset:
    preset = Preset.objects.create(slug="af-30", name="After final 30", cycle_days=30, paper_cycle_days=30)
    for age, kind, channel in STEPS:
        PresetStep.objects.create(preset=preset, bill_age_days=age, kind=kind, channel=channel)
    return preset


@pytest.fixture
def org(preset):
    organization = OrganizationFactory.create(
        slug="smile-dental", name="Smile Dental", timezone="America/Denver"
    )
    DunningSettings.objects.create(organization=organization, preset=preset)
    return organization


@pytest.fixture
def front_desk(org):
    return MembershipFactory.create(organization=org, role=Role.FRONT_DESK, user__username="frontdesk").user


@pytest.fixture
def manager(org):
    return MembershipFactory.create(
        organization=org, role=Role.BILLING_MANAGER, user__username="manager"
    ).user


def guarantor(org, pid: str, first: str = "Ana", last: str = "Diaz", **fields):
    defaults = {
        "mobile_phone": "+18015550100", "home_phone": "+18015550111", "work_phone": "+18015550122",
        "email": f"{pid.lower()}@example.com", "address_line1": "1 Main St", "address_city": "Salt Lake City",
        "address_state": "UT", "address_zip": "84101", "address_status": "valid", "timezone": "America/Denver",
        "last_visit_date": date(2026, 1, 10),
    }  # fmt: skip
    patient = GuarantorFactory.create(
        organization=org, external_id=pid, first_name=first, last_name=last, **{**defaults, **fields}
    )
    AccountFactory.create(guarantor=patient, bucket_0_30=Decimal("20.00"), bucket_over_90=Decimal("80.00"),
                   total=Decimal("100.00"), patient_portion=Decimal("100.00"), aging_category="over_90")  # fmt: skip
    return patient


def statement(org, patient, bill_id: str, start: date, amount: str = "100.00") -> Bill:
    return BillFactory.create(
        organization=org, guarantor=patient, bill_id=bill_id, effective_created_date=start,
        statement_date=start, amount_due=Decimal(amount),
    )  # fmt: skip


def walk(org, first: date, last: date) -> None:
    """The daily cycle from ``first`` to ``last``: the engine's run, then the outbox sends what is due."""
    day = first
    while day <= last:
        with time_machine.travel(noon(day), tick=False):
            run_dunning(organization=org, on=day, now=noon(day))
            messages_send_due(organization=org, now=noon(day))
        day += timedelta(days=1)


def completed_bill(org, patient, bill_id: str, final_at: datetime, amount: str = "100.00") -> Bill:
    """A bill as the engine leaves it on the day of its final step (decided and sent), without the walk."""
    bill = BillFactory.create(
        organization=org, guarantor=patient, bill_id=bill_id, amount_due=Decimal(amount), state=BillState.COMPLETED,
        effective_created_date=final_at.date() - timedelta(days=FINAL_AGE), ended_at=final_at,
    )  # fmt: skip
    step = PresetStep.objects.get(preset__slug="af-30", bill_age_days=FINAL_AGE, channel="email")
    message = Message.objects.create(
        organization=org, patient=patient, bill=bill, generation=1, step_key=step.step_key, kind=Kind.FINAL,
        channel="email", destination=patient.email, state=State.SENT, sent_at=final_at,
    )  # fmt: skip
    DunningDecision.objects.create(
        organization=org, bill=bill, generation=1, step=step, step_key=step.step_key, run_date=final_at.date(),
        bill_age_days=FINAL_AGE, step_age_days=FINAL_AGE, kind="final", channel="email", action=Action.SEND,
        message=message,
    )  # fmt: skip
    return bill


def worklist_ids(org, on: date = TODAY) -> list[str]:
    return [bill.bill_id for bill in after_final_worklist(organization=org, on=on)]


# --- A1: who is on the list, in which order, with what ----------------------------------------------------


def test_a1_completed_owing_bills_oldest_final_notice_first_through_the_engine(org):
    """Three bills walked through the engine reach their final step 10, 5 and 1 days ago; bill ids run the
    other way, so an order by id would fail. Final dates are what the outbox sent."""
    oldest = statement(org, guarantor(org, "P1"), "S-3", TODAY - timedelta(days=FINAL_AGE + 10))
    middle = statement(
        org, guarantor(org, "P2", "Tom", "Okafor"), "S-1", TODAY - timedelta(days=FINAL_AGE + 5)
    )
    newest = statement(org, guarantor(org, "P3", "Lee", "Park"), "S-2", TODAY - timedelta(days=FINAL_AGE + 1))
    running = statement(org, guarantor(org, "P4"), "S-0", TODAY - timedelta(days=FINAL_AGE - 1))
    walk(org, oldest.effective_created_date, TODAY)

    assert Bill.objects.get(pk=running.pk).state == BillState.ACTIVE
    assert worklist_ids(org) == ["S-3", "S-1", "S-2"]
    rows = after_final_worklist(organization=org, on=TODAY)
    for bill, age in zip(rows, (10, 5, 1), strict=True):
        assert bill.state == BillState.COMPLETED
        assert bill.final_left_at == noon(TODAY - timedelta(days=age))
    listed = worklist_rows(bills=rows)
    assert [(n.channel, n.status, n.left) for n in listed[0].final_notices] == [
        ("email", "Sent", True),
        ("sms", "Sent", True),
    ]
    assert listed[0].bill.guarantor.home_phone == "+18015550111"
    assert {oldest.pk, middle.pk, newest.pk} == {row.bill.pk for row in listed}


def test_a1_paid_closed_active_zero_and_other_organizations_bills_are_not_listed(org):
    patient = guarantor(org, "P1")
    completed_bill(org, patient, "LISTED", noon(TODAY - timedelta(days=3)))
    completed_bill(org, patient, "ZERO", noon(TODAY - timedelta(days=3)), amount="0.00")
    BillFactory.create(organization=org, guarantor=patient, bill_id="PAID", paid=True)
    BillFactory.create(organization=org, guarantor=patient, bill_id="CLOSED", closed=True)
    BillFactory.create(organization=org, guarantor=patient, bill_id="ACTIVE")
    other = OrganizationFactory.create(slug="other-dental")
    completed_bill(other, guarantor(other, "P1"), "ELSEWHERE", noon(TODAY - timedelta(days=9)))
    assert worklist_ids(org) == ["LISTED"]


def test_a1_a_final_notice_that_never_left_is_dated_by_its_decision_and_has_no_sent_at(org):
    """No mobile and no email: both final messages are undeliverable. The bill is listed (it owes), dated by
    the engine's decision; the command says final_sent_at null."""
    bill = statement(
        org, guarantor(org, "P1", mobile_phone="", email=""), "S-1", TODAY - timedelta(days=FINAL_AGE)
    )
    walk(org, TODAY - timedelta(days=1), TODAY)
    (row,) = worklist_rows(bills=after_final_worklist(organization=org, on=TODAY))
    assert row.bill.pk == bill.pk
    assert row.bill.final_left_at is None
    assert row.bill.final_decided_at is not None
    assert [(n.channel, n.status, n.left) for n in row.final_notices] == [
        ("email", "Undelivered", False),
        ("sms", "Undelivered", False),
    ]
    assert after_final_rows(organization=org, on=TODAY)[0]["final_sent_at"] is None


# --- A2: each outcome ---------------------------------------------------------------------------------


def test_a2_promise_to_pay_snoozes_until_the_date_and_the_bill_returns_the_day_after(org, front_desk):
    patient = guarantor(org, "P1")
    bill = completed_bill(org, patient, "S-1", noon(TODAY - timedelta(days=2)))
    promised = TODAY + timedelta(days=5)

    recorded = after_final_record(
        bill=bill, outcome="promise_to_pay", user=front_desk, promise_date=promised, note="Pays on payday"
    )

    snooze = Snooze.objects.get(guarantor=patient)
    assert (snooze.until, snooze.reason, snooze.created_by) == (
        promised + timedelta(days=1),
        "Promise to pay by Jun 6, 2026",
        front_desk,
    )
    assert recorded.snooze == snooze
    assert (recorded.outcome, recorded.promise_date, recorded.generation, recorded.note) == (
        "promise_to_pay",
        promised,
        1,
        "Pays on payday",
    )
    assert worklist_ids(org, TODAY) == []
    assert worklist_ids(org, promised) == []
    assert [b.bill_id for b in after_final_promised(organization=org, on=promised)] == ["S-1"]
    assert worklist_ids(org, promised + timedelta(days=1)) == ["S-1"]
    assert list(after_final_promised(organization=org, on=promised + timedelta(days=1))) == []
    assert (
        after_final_rows(organization=org, on=promised + timedelta(days=1))[0]["outcome"] == "promise_to_pay"
    )
    assert Bill.objects.get(pk=bill.pk).state == BillState.COMPLETED
    audit = AuditEvent.objects.get(action="after_final.promise_to_pay")
    assert (audit.actor, audit.object_type, audit.object_id) == (front_desk, "practices.Bill", str(bill.pk))
    assert audit.changes["promise_date"] == ["", promised.isoformat()]
    assert AuditEvent.objects.filter(action="snooze.create", actor=front_desk).count() == 1


@pytest.mark.parametrize(
    ("promise_date", "message"),
    [
        (None, "needs the date"),
        (TODAY - timedelta(days=1), "in the past"),
        (TODAY + timedelta(days=400), "more than a year away"),
    ],
)
def test_a2_a_promise_needs_a_date_from_today_within_a_year(org, front_desk, promise_date, message):
    bill = completed_bill(org, guarantor(org, "P1"), "S-1", noon(TODAY - timedelta(days=2)))
    with pytest.raises(AfterFinalError, match=message):
        after_final_record(bill=bill, outcome="promise_to_pay", user=front_desk, promise_date=promise_date)
    assert not AfterFinalOutcome.objects.exists()
    assert not Snooze.objects.exists()


def test_a2_only_a_promise_takes_a_date_and_unknown_outcomes_are_refused(org, front_desk):
    bill = completed_bill(org, guarantor(org, "P1"), "S-1", noon(TODAY - timedelta(days=2)))
    with pytest.raises(AfterFinalError, match="Only a promise to pay takes a date"):
        after_final_record(bill=bill, outcome="payment_plan", user=front_desk, promise_date=TODAY)
    with pytest.raises(AfterFinalError, match="Unknown outcome"):
        after_final_record(bill=bill, outcome="forgive", user=front_desk)


def test_a2_payment_plan_keeps_the_bill_listed_until_the_feed_closes_it(org, front_desk):
    patient = guarantor(org, "P1")
    bill = completed_bill(org, patient, "S-1", noon(TODAY - timedelta(days=2)))

    after_final_record(bill=bill, outcome="payment_plan", user=front_desk)
    assert after_final_rows(organization=org, on=TODAY) == [
        {"guarantor_id": "P1", "bill_id": "S-1", "amount_due": "100.00",
         "final_sent_at": noon(TODAY - timedelta(days=2)).isoformat(), "outcome": "payment_plan"},
    ]  # fmt: skip
    assert Bill.objects.get(pk=bill.pk).state == BillState.COMPLETED

    # The PMS says so in the next feed: I6 closes the campaign, and it leaves the list.
    feed = {"organization": org.slug, "generated_at": noon(TODAY).isoformat(), "statements": [],
            "patients": [feed_patient("P1", on_payment_plan=True)]}  # fmt: skip
    summary = feed_import(raw=json.dumps(feed).encode())
    assert summary.rejected == 0, summary.as_json()
    assert Bill.objects.get(pk=bill.pk).state == BillState.CLOSED
    assert worklist_ids(org) == []
    assert AuditEvent.objects.filter(action="after_final.payment_plan", actor=front_desk).count() == 1


def test_a2_restart_reminders_is_a_reset_and_the_engine_sends_step_one_again(org, front_desk):
    """D9 through the staff's button: generation 2 from today, next due date to compute, active, not ended;
    the next run sends the age-0 statement again (the real engine, not a check of the fields alone)."""
    patient = guarantor(org, "P1")
    bill = statement(org, patient, "S-1", TODAY - timedelta(days=FINAL_AGE + 4))
    walk(org, bill.effective_created_date, TODAY - timedelta(days=4))
    bill.refresh_from_db()
    assert (bill.state, bill.generation) == (BillState.COMPLETED, 1)
    assert bill.ended_at is not None

    after_final_record(bill=bill, outcome="restart_reminders", user=front_desk, at=noon(TODAY))

    bill.refresh_from_db()
    assert (bill.generation, bill.effective_created_date, bill.state) == (2, TODAY, BillState.ACTIVE)
    assert (bill.next_dunning_date, bill.ended_at, bill.amount_changed) == (None, None, False)
    assert worklist_ids(org) == []

    decisions = [d.as_json() for d in run_dunning(organization=org, on=TODAY, now=noon(TODAY))]
    sent = sorted((d["generation"], d["step_age_days"], d["kind"], d["channel"]) for d in decisions
                  if d["action"] == "send")  # fmt: skip
    assert sent == [(2, 0, "statement", "email"), (2, 0, "statement", "sms")]
    assert Message.objects.filter(bill=bill, generation=2, kind=Kind.STATEMENT).count() == 2
    recorded = AfterFinalOutcome.objects.get()
    assert (recorded.outcome, recorded.generation) == ("restart_reminders", 1)
    audit = AuditEvent.objects.get(action="after_final.restart_reminders")
    assert audit.changes["generation"] == ["1", "2"]
    assert audit.changes["state"] == ["completed", "active"]

    # Once the new schedule runs out, the bill is back with no outcome of this generation yet.
    walk(org, TODAY + timedelta(days=1), TODAY + timedelta(days=FINAL_AGE))
    assert after_final_rows(organization=org, on=TODAY + timedelta(days=FINAL_AGE))[0]["outcome"] is None


def test_a2_restarting_a_request_campaign_is_refused_while_another_request_runs(org, front_desk):
    patient = guarantor(org, "P1")
    old = completed_bill(org, patient, "R-1", noon(TODAY - timedelta(days=2)))
    Bill.objects.filter(pk=old.pk).update(source="request")
    BillFactory.create(organization=org, guarantor=patient, bill_id="R-2", source="request")
    old.refresh_from_db()
    with pytest.raises(AfterFinalError, match=r"already has a running payment request \(R-2\)"):
        after_final_record(bill=old, outcome="restart_reminders", user=front_desk)
    assert Bill.objects.get(pk=old.pk).state == BillState.COMPLETED


def test_a2_collections_closes_the_bill_with_its_reason_and_it_leaves_every_list(org, front_desk):
    patient = guarantor(org, "P1")
    bill = completed_bill(org, patient, "S-1", noon(TODAY - timedelta(days=2)))

    after_final_record(bill=bill, outcome="collections", user=front_desk, note="Agency: Acme")

    bill.refresh_from_db()
    assert (bill.state, bill.closed_reason, bill.ended_at) == (
        BillState.CLOSED,
        ClosedReason.COLLECTIONS,
        noon(TODAY),
    )
    assert worklist_ids(org) == []
    assert list(after_final_promised(organization=org, on=TODAY)) == []
    assert not eligible_guarantors(organization=org, on=TODAY).filter(pk=patient.pk).exists()
    audit = AuditEvent.objects.get(action="after_final.collections")
    assert audit.changes["state"] == ["completed", "closed"]
    assert audit.changes["closed_reason"] == ["", "collections"]
    assert audit.changes["note"] == ["", "Agency: Acme"]

    with pytest.raises(
        AfterFinalError, match="no longer on the after-final worklist: it was sent to collections"
    ):
        after_final_record(bill=bill, outcome="restart_reminders", user=front_desk)
    assert AfterFinalOutcome.objects.count() == 1


def test_a2_write_off_needs_a_billing_manager(org, front_desk, manager):
    bill = completed_bill(org, guarantor(org, "P1"), "S-1", noon(TODAY - timedelta(days=2)))
    with pytest.raises(OutcomeNotAllowed, match="Only a billing manager"):
        after_final_record(bill=bill, outcome="written_off", user=front_desk)
    assert Bill.objects.get(pk=bill.pk).state == BillState.COMPLETED

    after_final_record(bill=bill, outcome="written_off", user=manager)
    bill.refresh_from_db()
    assert (bill.state, bill.closed_reason) == (BillState.CLOSED, ClosedReason.WRITTEN_OFF)
    assert AuditEvent.objects.get(action="after_final.written_off").actor == manager


def test_a2_someone_outside_the_organization_records_nothing(org):
    bill = completed_bill(org, guarantor(org, "P1"), "S-1", noon(TODAY - timedelta(days=2)))
    stranger = MembershipFactory.create(
        organization=OrganizationFactory.create(slug="other"), role=Role.ORG_ADMIN
    ).user
    with pytest.raises(OutcomeNotAllowed):
        after_final_record(bill=bill, outcome="payment_plan", user=stranger)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"state": BillState.PAID}, "it has been paid"),
        ({"state": BillState.ACTIVE}, "its reminders are running"),
        ({"state": BillState.CLOSED}, "it was closed"),
        ({"amount_due": Decimal("0.00")}, "nothing is owed on it"),
    ],
)
def test_a2_a_bill_that_left_the_list_is_refused_with_the_reason(org, front_desk, change, message):
    bill = completed_bill(org, guarantor(org, "P1"), "S-1", noon(TODAY - timedelta(days=2)))
    Bill.objects.filter(pk=bill.pk).update(**change)  # a payment or a feed got there first
    with pytest.raises(AfterFinalError, match=message):
        after_final_record(bill=bill, outcome="payment_plan", user=front_desk)
    assert not AfterFinalOutcome.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="after_final.").exists()


# --- the collections export ----------------------------------------------------------------------------


def test_the_collections_export_has_the_agency_columns_and_no_clinical_data(org, front_desk):
    patient = guarantor(org, "P1", "Ana", "=HYPERLINK(\"http://x\")", date_of_birth=date(1980, 4, 12),
                        address_line2="Apt 4")  # fmt: skip
    bill = statement(org, patient, "S-1", TODAY - timedelta(days=FINAL_AGE + 3), amount="85.50")
    walk(org, TODAY - timedelta(days=3), TODAY - timedelta(days=3))
    bill.refresh_from_db()
    assert bill.state == BillState.COMPLETED
    kept = completed_bill(org, guarantor(org, "P2"), "S-2", noon(TODAY - timedelta(days=1)))
    after_final_record(bill=bill, outcome="collections", user=front_desk)
    after_final_record(bill=kept, outcome="payment_plan", user=front_desk)

    (row,) = collections_export_rows(organization=org)
    assert row == {
        "guarantor_id": "P1", "last_name": "=HYPERLINK(\"http://x\")", "first_name": "Ana",
        "address_line1": "1 Main St", "address_line2": "Apt 4", "city": "Salt Lake City", "state": "UT",
        "zip": "84101", "home_phone": "8015550111", "work_phone": "8015550122", "mobile_phone": "8015550100",
        "email": "p1@example.com", "bill_id": "S-1", "amount_due": "85.50", "aging_0_30": "20.00",
        "aging_31_60": "0.00", "aging_61_90": "0.00", "aging_over_90": "80.00",
        "last_statement_date": (TODAY - timedelta(days=FINAL_AGE + 3)).isoformat(),
        "final_notice_date": (TODAY - timedelta(days=3)).isoformat(), "placed_date": TODAY.isoformat(),
    }  # fmt: skip

    text = collections_export_csv(organization=org, user=front_desk)
    header, *lines = list(csv.reader(io.StringIO(text)))
    assert tuple(header) == COLLECTIONS_COLUMNS
    assert not {"date_of_birth", "dob", "diagnosis", "procedure"} & set(header)
    assert "1980" not in text
    assert lines[0][1] == '\'=HYPERLINK("http://x")'  # the one CSV writer neutralises formulas
    audit = AuditEvent.objects.get(action="after_final.collections_export")
    assert (audit.actor, audit.changes["rows"]) == (front_desk, ["", "1"])
    assert collections_export_rows(organization=org, since=TODAY + timedelta(days=1)) == []
    assert len(collections_export_rows(organization=org, since=TODAY)) == 1


# --- the dashboard: T1, T2, confirmation, messages -----------------------------------------------------


def url(name: str, org, *args: str) -> str:
    return reverse(f"dunning_dashboard:{name}", args=[org.slug, *args])


def test_the_worklist_page_lists_the_bills_with_contacts_and_outcome_buttons(client, org, front_desk):
    completed_bill(
        org, guarantor(org, "P1", "Marisol", "Quintanilla"), "S-1", noon(TODAY - timedelta(days=2))
    )
    client.force_login(front_desk)
    page = client.get(url("worklist", org)).content.decode()
    assert "Marisol Quintanilla" in page
    # Home and work: a call list, printed as a person dials them and linked in E.164 (issue 12).
    assert '<a href="tel:+18015550111">(801) 555-0111</a>' in page
    assert '<a href="tel:+18015550122">(801) 555-0122</a>' in page
    assert 'Promise to pay<span class="visually-hidden"> for Marisol Quintanilla (bill S-1)' in page
    assert 'disabled aria-describedby="write-off-role"' in page  # front desk: no write-off
    assert "Collections export (CSV)" in page
    client.force_login(MembershipFactory.create(organization=org, role=Role.BILLING_MANAGER).user)
    assert 'aria-describedby="write-off-role"' not in client.get(url("worklist", org)).content.decode()


def test_the_worklist_page_shows_each_bills_final_notice_and_outcome_and_the_promised_tab_its_return(
    client, org, front_desk
):
    listed = completed_bill(org, guarantor(org, "P1"), "S-1", noon(TODAY - timedelta(days=2)))
    promised = completed_bill(org, guarantor(org, "P2"), "S-2", noon(TODAY - timedelta(days=3)))
    after_final_record(bill=listed, outcome="payment_plan", user=front_desk)
    after_final_record(
        bill=promised, outcome="promise_to_pay", user=front_desk, promise_date=date(2026, 6, 10)
    )
    client.force_login(front_desk)

    work = client.get(url("worklist", org)).content.decode()
    assert '<li>Email: <span class="state state-sent">Sent</span></li>' in work
    assert "<strong>Payment plan (set up in the PMS)</strong>" in work
    back = client.get(url("worklist", org) + "?tab=promised").content.decode()
    assert "<td>Jun 11, 2026</td>" in back  # back on the list the day after the promised date


def test_the_worklist_page_is_a_fixed_number_of_queries(
    client, org, front_desk, django_assert_max_num_queries
):
    for n in range(3):
        completed_bill(org, guarantor(org, f"P{n}"), f"S-{n}", noon(TODAY - timedelta(days=n + 1)))
    client.force_login(front_desk)
    client.get(url("worklist", org))
    with django_assert_max_num_queries(9) as few:
        client.get(url("worklist", org))
    for n in range(3, 25):
        completed_bill(org, guarantor(org, f"P{n}"), f"S-{n}", noon(TODAY - timedelta(days=n + 1)))
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url("worklist", org)).status_code == 200


def test_t1_another_organizations_worklist_bill_and_export_answer_404(client, org, front_desk):
    other = OrganizationFactory.create(slug="other-dental")
    theirs = completed_bill(other, guarantor(other, "P9"), "THEIRS", noon(TODAY - timedelta(days=2)))
    completed_bill(org, guarantor(org, "P1"), "S-1", noon(TODAY - timedelta(days=2)))
    client.force_login(front_desk)
    assert client.get(url("worklist", other)).status_code == 404
    assert client.get(url("collections-export", other)).status_code == 404
    assert client.post(url("outcome", other, "THEIRS"), {"outcome": "payment_plan"}).status_code == 404
    assert client.post(url("outcome", org, "THEIRS"), {"outcome": "payment_plan"}).status_code == 404
    assert not AfterFinalOutcome.objects.filter(bill=theirs).exists()
    client.logout()
    assert client.get(url("worklist", org)).status_code == 302  # to the login page


def test_collections_asks_for_confirmation_then_closes_with_a_message(client, org, front_desk):
    bill = completed_bill(org, guarantor(org, "P1", "Tom", "Okafor"), "S-1", noon(TODAY - timedelta(days=2)))
    client.force_login(front_desk)

    confirm = client.post(url("outcome", org, "S-1"), {"outcome": "collections", "note": "Acme"})
    assert confirm.status_code == 200
    assert "Yes, send to collections" in confirm.content.decode()
    assert Bill.objects.get(pk=bill.pk).state == BillState.COMPLETED

    done = client.post(
        url("outcome", org, "S-1"), {"outcome": "collections", "note": "Acme", "confirmed": "on"}, follow=True
    )
    assert "Bill S-1 of Tom Okafor ($100.00) was sent to collections and closed." in done.content.decode()
    assert Bill.objects.get(pk=bill.pk).closed_reason == ClosedReason.COLLECTIONS
    assert AfterFinalOutcome.objects.get().note == "Acme"


def test_no_confirmation_page_for_a_bill_that_already_left_the_list(client, org, front_desk):
    bill = completed_bill(org, guarantor(org, "P1", "Tom", "Okafor"), "S-1", noon(TODAY - timedelta(days=2)))
    Bill.objects.filter(pk=bill.pk).update(state=BillState.PAID)
    client.force_login(front_desk)
    page = client.post(url("outcome", org, "S-1"), {"outcome": "collections"}, follow=True).content.decode()
    assert "Yes, send to collections" not in page
    assert (
        "Nothing recorded for Tom Okafor: Bill S-1 is no longer on the after-final worklist: it has been paid."
        in page
    )


def test_a_refused_outcome_is_a_message_not_a_change(client, org, front_desk):
    bill = completed_bill(org, guarantor(org, "P1", "Tom", "Okafor"), "S-1", noon(TODAY - timedelta(days=2)))
    client.force_login(front_desk)
    page = client.post(
        url("outcome", org, "S-1"), {"outcome": "written_off", "confirmed": "on"}, follow=True
    ).content.decode()
    assert "Nothing recorded for Tom Okafor: Only a billing manager can write off a balance." in page
    page = client.post(
        url("outcome", org, "S-1"), {"outcome": "promise_to_pay"}, follow=True
    ).content.decode()
    assert "needs the date the guarantor promised to pay by" in page
    assert Bill.objects.get(pk=bill.pk).state == BillState.COMPLETED
    assert not AfterFinalOutcome.objects.exists()


def test_the_export_downloads_as_csv(client, org, front_desk):
    bill = completed_bill(org, guarantor(org, "P1"), "S-1", noon(TODAY - timedelta(days=2)))
    after_final_record(bill=bill, outcome="collections", user=front_desk)
    client.force_login(front_desk)
    response = client.get(url("collections-export", org))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="collections-smile-dental-2026-06-01.csv"'
    assert response.content.decode().splitlines()[1].startswith("P1,Diaz,Ana,1 Main St")
    assert client.get(url("collections-export", org), {"since": "June"}).status_code == 302


# --- the command (SPEC §10) ----------------------------------------------------------------------------


def after_final(*args: str) -> list[dict]:
    out, err = StringIO(), StringIO()
    call_command("after_final", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue())


def test_the_command_prints_the_worklist_as_json(org, front_desk):
    first = completed_bill(org, guarantor(org, "P1"), "S-1", noon(TODAY - timedelta(days=5)), amount="40.5")
    completed_bill(org, guarantor(org, "P2"), "S-2", noon(TODAY - timedelta(days=2)))
    after_final_record(bill=first, outcome="payment_plan", user=front_desk)
    assert after_final("--org", org.slug, "--json") == [
        {"guarantor_id": "P1", "bill_id": "S-1", "amount_due": "40.50",
         "final_sent_at": "2026-05-27T18:00:00+00:00", "outcome": "payment_plan"},
        {"guarantor_id": "P2", "bill_id": "S-2", "amount_due": "100.00",
         "final_sent_at": "2026-05-30T18:00:00+00:00", "outcome": None},
    ]  # fmt: skip
    assert after_final("--org", org.slug, "--json", "--date", "2026-06-02")[0]["bill_id"] == "S-1"


def test_the_command_exits_2_on_an_unknown_organization():
    with pytest.raises(CommandError) as raised:
        call_command("after_final", "--org", "nope", "--json", stdout=StringIO())
    assert raised.value.returncode == 2
    assert str(raised.value) == "unknown organization 'nope'"
