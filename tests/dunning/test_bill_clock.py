"""D7-D10 at import: how a feed moves a statement bill's dunning clock under the organization's settings."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from dunning.engine import run_dunning
from dunning.models import DunningDecision, DunningSettings, Preset, PresetStep
from notifications.models import Message
from practices.importer import feed_import
from practices.models import Bill, BillState
from tests.factories import OrganizationFactory, feed_patient, feed_statement

pytestmark = pytest.mark.django_db

# generated_at 2026-11-24T12:00Z is 2026-11-24 in Denver: the import date (I0).
IMPORT_DATE = date(2026, 11, 24)


@pytest.fixture
def org():
    preset = Preset.objects.create(slug="clock", name="Clock", cycle_days=30, paper_cycle_days=30)
    for age, kind, channel in [
        (0, "statement", "email"),
        (20, "due", "email"),
        (40, "past_due", "email"),
        (70, "final", "email"),
    ]:
        PresetStep.objects.create(preset=preset, bill_age_days=age, kind=kind, channel=channel)
    organization = OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    DunningSettings.objects.create(organization=organization, preset=preset)
    return organization


def configure(org, **changes):
    DunningSettings.objects.filter(organization=org).update(**changes)


def feed(feed_bytes, when="2026-11-24T12:00:00Z", **statement):
    return feed_import(raw=feed_bytes(generated_at=when, patients=[feed_patient("P1")],
                                      statements=[feed_statement("S-1", "P1", **statement)]))  # fmt: skip


def test_d7_natural_aging_starts_at_the_first_statement_date_and_does_not_move(org, feed_bytes):
    feed(feed_bytes, statement_date="2026-11-01")
    feed(feed_bytes, when="2026-11-25T12:00:00Z", statement_date="2026-11-20", amount_due="90.00")
    assert Bill.objects.get().effective_created_date == date(2026, 11, 1)


@pytest.mark.parametrize(
    ("status", "age"), [("new", 0), ("due", 20), ("past_due", 40), ("final", 70), ("", 0)]
)
def test_d8_the_dunning_status_places_the_bill_on_the_schedule(org, feed_bytes, status, age):
    configure(org, bill_aging="dunning_status")
    feed(feed_bytes, dunning_status=status)
    assert Bill.objects.get().effective_created_date == IMPORT_DATE - timedelta(days=age)


def test_d8_an_unchanged_status_leaves_the_clock_and_a_changed_one_moves_it(org, feed_bytes):
    configure(org, bill_aging="dunning_status")
    feed(feed_bytes, dunning_status="due")
    feed(feed_bytes, when="2026-11-30T12:00:00Z", dunning_status="due", amount_due="99.00")
    assert Bill.objects.get().effective_created_date == IMPORT_DATE - timedelta(days=20)
    feed(feed_bytes, when="2026-12-01T12:00:00Z", dunning_status="final")
    assert Bill.objects.get().effective_created_date == date(2026, 12, 1) - timedelta(days=70)


def test_d8_an_unknown_status_is_a_record_error(org, feed_bytes):
    configure(org, bill_aging="dunning_status")
    summary = feed(feed_bytes, dunning_status="overdue")
    assert summary.errors[0]["pointer"] == "/statements/0/dunning_status"
    assert summary.applied == 1  # the patient still applies


def test_d9_reset_flag_starts_a_new_generation_and_reopens_a_completed_bill(org, feed_bytes):
    configure(org, bill_reset_flag=True)
    feed(feed_bytes, statement_date="2026-08-01")
    Bill.objects.update(state=BillState.COMPLETED)
    feed(feed_bytes, when="2026-11-26T12:00:00Z", reset_bill=True)
    bill = Bill.objects.get()
    assert (bill.generation, bill.state, bill.effective_created_date) == (
        2,
        BillState.ACTIVE,
        date(2026, 11, 26),
    )
    decisions = run_dunning(organization=org, on=date(2026, 11, 26))
    assert [(d.generation, d.step_age_days, d.action) for d in decisions] == [(2, 0, "send")]


def test_d9_reset_flag_is_ignored_without_s8(org, feed_bytes):
    feed(feed_bytes)
    feed(feed_bytes, when="2026-11-26T12:00:00Z", reset_bill=True)
    assert Bill.objects.get().generation == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("amount_due", "55.00"), ("due_date", "2026-12-31"), ("statement_date", "2026-11-23")],
)
def test_d9_reset_on_a_change_in_a_chosen_field(org, feed_bytes, field, value):
    configure(org, reset_on_fields=True, reset_fields=[field])
    feed(feed_bytes)
    feed(feed_bytes, when="2026-11-26T12:00:00Z", **{field: value})
    assert Bill.objects.get().generation == 2


def test_d9_a_change_in_a_field_not_chosen_does_not_reset(org, feed_bytes):
    configure(org, reset_on_fields=True, reset_fields=["due_date"])
    feed(feed_bytes)
    feed(feed_bytes, when="2026-11-26T12:00:00Z", amount_due="55.00")
    assert Bill.objects.get().generation == 1


def test_d10_an_amount_change_without_reset_flags_a_bill_update_only_with_s7(org, feed_bytes):
    feed(feed_bytes)
    feed(feed_bytes, when="2026-11-25T12:00:00Z", amount_due="80.00")
    assert Bill.objects.get().amount_changed is False
    configure(org, communicate_on_update=True)
    feed(feed_bytes, when="2026-11-26T12:00:00Z", amount_due="70.00")
    bill = Bill.objects.get()
    assert (bill.amount_changed, bill.amount_due) == (True, Decimal("70.00"))


def test_d10_the_run_after_the_import_decides_the_bill_update_though_no_step_is_due(org, feed_bytes):
    """D10: "the engine run that follows the import decides it" - also when the bill's next step is weeks
    away (its stored next due date must not hide it from that run, D13)."""
    configure(org, communicate_on_update=True)
    feed(feed_bytes, statement_date="2026-11-24")
    run_dunning(organization=org, on=IMPORT_DATE)
    assert Bill.objects.get().next_dunning_date == IMPORT_DATE + timedelta(days=20)
    feed(feed_bytes, when="2026-11-27T12:00:00Z", statement_date="2026-11-24", amount_due="70.00")
    rows = [d.as_json() for d in run_dunning(organization=org, on=date(2026, 11, 27))]
    assert [(r["kind"], r["channel"], r["action"], r["step_age_days"]) for r in rows] == [
        ("bill_update", "email", "send", 3),
        ("bill_update", "sms", "send", 3),
    ]
    assert Bill.objects.get().next_dunning_date == IMPORT_DATE + timedelta(days=20)


def test_d10_a_do_not_contact_guarantors_bill_update_is_a_recorded_skip(org, feed_bytes):
    """D11, D12: a bill update for a do-not-contact guarantor leaves its decision, a skip, like every step."""
    configure(org, communicate_on_update=True)
    feed_import(raw=feed_bytes(generated_at="2026-11-24T12:00:00Z",
                               patients=[feed_patient("P1", do_not_contact=True)],
                               statements=[feed_statement("S-1", "P1", statement_date="2026-11-24")]))  # fmt: skip
    run_dunning(organization=org, on=IMPORT_DATE)
    feed_import(raw=feed_bytes(generated_at="2026-11-27T12:00:00Z",
                               patients=[feed_patient("P1", do_not_contact=True)],
                               statements=[feed_statement("S-1", "P1", statement_date="2026-11-24",
                                                          amount_due="70.00")]))  # fmt: skip
    rows = [d.as_json() for d in run_dunning(organization=org, on=date(2026, 11, 27))]
    assert [(r["kind"], r["channel"], r["action"], r["reason"]) for r in rows] == [
        ("bill_update", "email", "skip", "do_not_contact"),
        ("bill_update", "sms", "skip", "do_not_contact"),
    ]
    assert DunningDecision.objects.filter(kind="bill_update", reason="do_not_contact").count() == 2
    assert not Message.objects.exists()


def test_i6_a_completed_bill_still_follows_the_pms_amount_and_payment_plan(org, feed_bytes):
    """D11, I6: past its final notice a bill still owes; the PMS's zero pays it and a plan closes it."""
    feed(feed_bytes)
    Bill.objects.update(state=BillState.COMPLETED)
    feed(feed_bytes, when="2026-11-25T12:00:00Z", amount_due="0.00")
    assert Bill.objects.get().state == BillState.PAID

    feed_import(raw=feed_bytes(generated_at="2026-11-26T12:00:00Z", patients=[feed_patient("P1")],
                               statements=[feed_statement("S-2", "P1")]))  # fmt: skip
    Bill.objects.filter(bill_id="S-2").update(state=BillState.COMPLETED)
    feed_import(raw=feed_bytes(generated_at="2026-11-27T12:00:00Z",
                               patients=[feed_patient("P1", on_payment_plan=True)],
                               statements=[feed_statement("S-2", "P1")]))  # fmt: skip
    assert Bill.objects.get(bill_id="S-2").state == BillState.CLOSED
