"""The dunning engine: D1-D13 (SPEC §7), with Q2 and B5."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from dunning.engine import run_dunning
from dunning.models import DunningDecision, DunningSettings, Preset, PresetStep
from notifications.models import Message, OptOut, Reason, State
from payments.models import Snooze
from practices.models import Bill, BillState
from tests.factories import AccountFactory, GuarantorFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

D0 = date(2026, 6, 1)
NOON = datetime(2026, 6, 1, 18, 0, tzinfo=UTC)  # noon in Denver
STEPS = [
    (0, "statement", "email"), (0, "statement", "sms"), (0, "statement", "paper"), (10, "reminder", "sms"),
    (30, "due", "email"), (30, "due", "sms"), (30, "due", "paper"), (45, "past_due", "sms"), (60, "past_due", "email"),
    (60, "past_due", "paper"), (90, "final", "email"), (90, "final", "sms"), (90, "final", "paper"),
]  # fmt: skip


@pytest.fixture
def preset():
    preset = Preset.objects.create(slug="test-30", name="Test 30", cycle_days=30, paper_cycle_days=30)
    for age, kind, channel in STEPS:
        PresetStep.objects.create(preset=preset, bill_age_days=age, kind=kind, channel=channel)
    return preset


@pytest.fixture
def org(preset):
    organization = OrganizationFactory.create(
        slug="smile", name="Smile Dental", timezone="America/Denver", phone="+18015550199"
    )
    DunningSettings.objects.create(organization=organization, preset=preset)
    return organization


def settings_of(org, **changes) -> DunningSettings:
    DunningSettings.objects.filter(organization=org).update(**changes)
    return DunningSettings.objects.get(organization=org)


def guarantor(org, pid="P1", **kw):
    defaults = {"mobile_phone": "+18015550100", "email": f"{pid.lower()}@example.com", "address_line1": "1 Main St",
                "address_city": "Salt Lake City", "address_state": "UT", "address_zip": "84101", "address_status": "valid",
                "timezone": "America/Denver"}  # fmt: skip
    patient = GuarantorFactory.create(organization=org, external_id=pid, **{**defaults, **kw})
    AccountFactory.create(guarantor=patient)
    return patient


def bill(org, patient, bill_id="S-1", start=D0, amount="100.00", source="statement", **kw) -> Bill:
    moment = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
    return Bill.objects.create(organization=org, guarantor=patient, bill_id=bill_id, source=source, statement_date=start,
                               amount_due=Decimal(amount), created_at=moment, effective_created_date=start,
                               last_seen_at=moment, **kw)  # fmt: skip


def run(org, day, **kw):
    now = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=18)
    return [d.as_json() for d in run_dunning(organization=org, on=day, now=now, **kw)]


def sends(rows):
    return sorted((r["step_age_days"], r["kind"], r["channel"]) for r in rows if r["action"] == "send")


def skips(rows):
    return sorted((r["step_age_days"], r["channel"], r["reason"]) for r in rows if r["action"] == "skip")


# --- D1: never twice --------------------------------------------------------------------------------------


def test_the_first_run_sends_the_age_0_steps_and_a_second_run_decides_nothing(org):
    bill(org, guarantor(org))
    first = run(org, D0)
    assert sends(first) == [(0, "statement", "email"), (0, "statement", "paper"), (0, "statement", "sms")]
    assert run(org, D0) == []
    assert Message.objects.count() == 3


def test_the_decision_is_unique_in_the_database(org):
    b = bill(org, guarantor(org))
    run(org, D0)
    decision = DunningDecision.objects.filter(bill=b).first()
    assert decision is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        DunningDecision.objects.create(organization=org, bill=b, generation=decision.generation, step_key=decision.step_key,
                                       channel=decision.channel, run_date=D0, bill_age_days=0, step_age_days=0,
                                       kind="statement", action="send")  # fmt: skip


def test_the_json_rows_follow_the_contract_and_are_sorted(org):
    bill(org, guarantor(org, "P2"), bill_id="S-2")
    bill(org, guarantor(org, "P1"), bill_id="S-1")
    rows = run(org, D0)
    assert rows[0] == {"bill_id": "S-1", "generation": 1, "bill_age_days": 0, "step_age_days": 0, "kind": "statement",
                       "channel": "email", "action": "send", "reason": ""}  # fmt: skip
    assert [(r["bill_id"], r["channel"]) for r in rows] == sorted((r["bill_id"], r["channel"]) for r in rows)


def test_each_day_only_sends_what_fell_due(org):
    bill(org, guarantor(org))
    run(org, D0)
    assert run(org, D0 + timedelta(days=5)) == []
    assert sends(run(org, D0 + timedelta(days=10))) == [(10, "reminder", "sms")]


# --- D2: catch-up -----------------------------------------------------------------------------------------


def test_catch_up_sends_only_the_latest_due_step_per_channel(org):
    bill(org, guarantor(org), start=D0 - timedelta(days=40))
    rows = run(org, D0)
    assert sends(rows) == [(30, "due", "email"), (30, "due", "paper"), (30, "due", "sms")]
    assert skips(rows) == [(0, "email", "superseded"), (0, "paper", "superseded"), (0, "sms", "superseded"),
                           (10, "sms", "superseded")]  # fmt: skip
    assert all(r["bill_age_days"] == 40 for r in rows)


# --- D3: thresholds ---------------------------------------------------------------------------------------


def test_thresholds_apply_per_channel_and_must_be_exceeded(org):
    settings_of(org, min_electronic=Decimal("100.00"), min_print=Decimal("50.00"))
    bill(org, guarantor(org), amount="100.00")
    rows = run(org, D0)
    assert sends(rows) == [(0, "statement", "paper")]
    assert skips(rows) == [(0, "email", "below_threshold"), (0, "sms", "below_threshold")]


# --- D4: opt-outs and missing destinations ----------------------------------------------------------------


def test_an_opted_out_channel_is_skipped_and_a_missing_one_becomes_undeliverable(org):
    patient = guarantor(org, email="")
    OptOut.objects.create(
        organization=org, channel="sms", address=patient.mobile_phone, source="sms_keyword", changed_at=NOON
    )
    bill(org, patient)
    rows = run(org, D0)
    assert (0, "sms", "opted_out") in skips(rows)
    assert (0, "statement", "email") in sends(rows)
    email = Message.objects.get(channel="email")
    assert (email.state, email.reason) == (State.UNDELIVERED, "no_destination")


def test_the_pms_opt_out_flag_counts_too(org):
    bill(org, guarantor(org, pms_email_opt_out=True))
    assert (0, "email", "opted_out") in skips(run(org, D0))


# --- D5: drop to paper ------------------------------------------------------------------------------------


def test_a_past_due_step_drops_to_paper_when_every_electronic_channel_is_opted_out(org):
    settings_of(org, drop_to_paper_on_opt_out=True)
    patient = guarantor(org, pms_sms_opt_out=True, pms_email_opt_out=True)
    bill(org, patient, start=D0 - timedelta(days=45))
    run(org, D0 - timedelta(days=45) + timedelta(days=31))  # take the day-30 steps first
    rows = run(org, D0)
    assert rows == [
        {"bill_id": "S-1", "generation": 1, "bill_age_days": 45, "step_age_days": 45, "kind": "past_due", "channel": "paper",
         "action": "send", "reason": "drop_to_paper"},
        {"bill_id": "S-1", "generation": 1, "bill_age_days": 45, "step_age_days": 45, "kind": "past_due", "channel": "sms",
         "action": "skip", "reason": "opted_out"},
    ]  # fmt: skip
    assert Message.objects.filter(channel="paper", kind="past_due").count() == 1


def test_no_drop_to_paper_without_the_setting_or_for_a_reminder(org):
    patient = guarantor(org, pms_sms_opt_out=True, pms_email_opt_out=True)
    bill(org, patient, start=D0 - timedelta(days=45))
    run(org, D0 - timedelta(days=14))
    assert [r for r in run(org, D0) if r["channel"] == "paper"] == []
    settings_of(org, drop_to_paper_on_opt_out=True)
    bill(
        org,
        guarantor(org, "P9", pms_sms_opt_out=True, pms_email_opt_out=True),
        bill_id="S-9",
        start=D0 - timedelta(days=10),
    )
    rows = [r for r in run(org, D0 + timedelta(days=1)) if r["bill_id"] == "S-9"]
    assert not any(r["reason"] == "drop_to_paper" for r in rows)  # day 10 is a reminder, not due/past due


# --- D6: skip paper ---------------------------------------------------------------------------------------


def test_skip_paper_when_electronic_is_available(org):
    settings_of(org, skip_paper_when_electronic=True)
    bill(org, guarantor(org))
    assert (0, "paper", "electronic_available") in skips(run(org, D0))


def test_skip_paper_for_an_invalid_address(org):
    settings_of(org, skip_paper_when_electronic=True)
    bill(org, guarantor(org, mobile_phone="", email="", address_status="invalid"))
    assert (0, "paper", "invalid_address") in skips(run(org, D0))


def test_without_s12_paper_goes_even_when_electronic_is_available(org):
    bill(org, guarantor(org))
    assert (0, "statement", "paper") in sends(run(org, D0))


# --- D11: ends, do not contact, snoozes -------------------------------------------------------------------


@pytest.mark.parametrize("state", [BillState.PAID, BillState.CLOSED, BillState.COMPLETED])
def test_ended_bills_get_nothing(org, state):
    bill(org, guarantor(org), state=state)
    assert run(org, D0) == []


def test_a_bill_past_its_last_step_is_completed(org):
    b = bill(org, guarantor(org), start=D0 - timedelta(days=95))
    run(org, D0)
    b.refresh_from_db()
    assert b.state == BillState.COMPLETED
    assert run(org, D0 + timedelta(days=1)) == []


def test_do_not_contact_skips_every_step(org):
    bill(org, guarantor(org, do_not_contact=True))
    rows = run(org, D0)
    assert {r["reason"] for r in rows} == {"do_not_contact"}
    assert not Message.objects.exists()


def test_a_snoozed_guarantor_gets_nothing_and_catches_up_after(org):
    patient = guarantor(org)
    bill(org, patient)
    run(org, D0)
    Snooze.objects.create(
        organization=org, guarantor=patient, until=D0 + timedelta(days=35), reason="Insurance"
    )
    for day in range(1, 35):
        assert run(org, D0 + timedelta(days=day)) == []
    rows = run(org, D0 + timedelta(days=35))
    assert sends(rows) == [(30, "due", "email"), (30, "due", "paper"), (30, "due", "sms")]
    assert (10, "sms", "superseded") in skips(rows)


# --- B5: request bills ------------------------------------------------------------------------------------


def test_a_request_bills_age_0_steps_are_skipped_as_the_request(org):
    bill(org, guarantor(org), bill_id="REQ-1", source="request")
    rows = run(org, D0)
    assert skips(rows) == [(0, "email", "request"), (0, "paper", "request"), (0, "sms", "request")]
    assert not Message.objects.exists()
    assert sends(run(org, D0 + timedelta(days=10))) == [(10, "reminder", "sms")]


# --- D10: bill update -------------------------------------------------------------------------------------


def test_an_amount_change_sends_one_bill_update_per_electronic_channel(org):
    settings_of(org, communicate_on_update=True)
    b = bill(org, guarantor(org))
    run(org, D0)
    Bill.objects.filter(pk=b.pk).update(
        amount_due=Decimal("80.00"), amount_changed=True, next_dunning_date=None
    )
    rows = run(org, D0 + timedelta(days=3))
    assert rows == [
        {"bill_id": "S-1", "generation": 1, "bill_age_days": 3, "step_age_days": 3, "kind": "bill_update",
         "channel": channel, "action": "send", "reason": ""} for channel in ("email", "sms")
    ]  # fmt: skip
    assert run(org, D0 + timedelta(days=4)) == []


# --- D12 / D13 --------------------------------------------------------------------------------------------


def test_every_decision_is_kept_as_the_bills_trail(org):
    b = bill(org, guarantor(org), start=D0 - timedelta(days=12))
    run(org, D0)
    trail = list(DunningDecision.objects.filter(bill=b).order_by("step_age_days", "channel").values_list(
        "step_age_days", "channel", "action", "reason"))  # fmt: skip
    assert trail == [(0, "email", "send", ""), (0, "paper", "send", ""), (0, "sms", "skip", "superseded"),
                     (10, "sms", "send", "")]  # fmt: skip
    assert DunningDecision.objects.filter(bill=b, action="send", message__isnull=False).count() == 3


def test_the_next_due_date_is_stored_and_bills_not_due_cost_nothing(org):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    b = bill(org, guarantor(org))
    run(org, D0)
    b.refresh_from_db()
    assert b.next_dunning_date == D0 + timedelta(days=10)

    def queries_with(n: int, prefix: str) -> int:
        for i in range(n):
            bill(
                org,
                guarantor(org, f"{prefix}{i}"),
                bill_id=f"S-{prefix}{i}",
                next_dunning_date=D0 + timedelta(days=50),
            )
        with CaptureQueriesContext(connection) as ctx:
            assert run(org, D0 + timedelta(days=5)) == []
        return len(ctx.captured_queries)

    assert run(org, D0 + timedelta(days=5)) == []  # the day's run record now exists
    assert queries_with(5, "A") == queries_with(100, "B")  # D13: the run reads only bills with something due


def test_dry_run_writes_nothing(org):
    bill(org, guarantor(org))
    assert len(run(org, D0, dry_run=True)) == 3
    assert not DunningDecision.objects.exists()
    assert not Message.objects.exists()
    assert len(run(org, D0)) == 3


# --- Q2: quiet hours apply to dunning ----------------------------------------------------------------------


def test_dunning_messages_respect_quiet_hours(org):
    bill(org, guarantor(org, timezone="America/New_York", timezone_source="feed"))
    run_dunning(organization=org, on=D0, now=datetime(2026, 6, 2, 3, 0, tzinfo=UTC))  # 23:00 in New York
    sms = Message.objects.get(channel="sms")
    assert sms.state == State.SCHEDULED
    assert sms.scheduled_for == datetime(2026, 6, 2, 12, 0, tzinfo=UTC)  # 08:00 EDT
    assert Message.objects.get(channel="paper").state == State.PENDING


def test_a_tuba_city_guarantor_waits_for_morning_in_both_navajo_and_hopi_time(org):
    """Q3 in the engine's bulk writes: an older import stored Tuba City (ZIP 86045) on Phoenix time; the candidate
    set is Navajo (Denver, DST) and Hopi (Phoenix) time, and the text waits for the later 08:00 (Phoenix)."""
    patient = guarantor(
        org, address_state="AZ", address_zip="86045", timezone="America/Phoenix", timezone_source="zip"
    )
    bill(org, patient)
    # 2026-06-01 21:30 in Denver (MDT) is 20:30 in Phoenix (MST): quiet on the Navajo side only.
    run_dunning(organization=org, on=D0, now=datetime(2026, 6, 2, 3, 30, tzinfo=UTC))
    sms = Message.objects.get(channel="sms")
    assert (sms.state, sms.reason) == (State.SCHEDULED, Reason.QUIET_HOURS)
    assert sms.scheduled_for == datetime(2026, 6, 2, 15, 0, tzinfo=UTC)  # 08:00 MST, 09:00 on the Navajo side
    assert "America/" in sms.hold_detail


# --- the schedule over 120 days -------------------------------------------------------------------------


def test_a_simulated_120_days_sends_exactly_the_presets_schedule(org):
    starts = [D0 + timedelta(days=offset) for offset in (0, 3, 17, 29)]
    for i, start in enumerate(starts):
        bill(org, guarantor(org, f"P{i}"), bill_id=f"S-{i}", start=start)
    for day in range(121):
        run(org, D0 + timedelta(days=day))
    expected = sorted((age, kind, channel) for age, kind, channel in STEPS)
    for i, start in enumerate(starts):
        messages = Message.objects.filter(bill__bill_id=f"S-{i}").select_related("bill")
        sent = sorted(
            (d.step_age_days, d.kind, d.channel)
            for d in DunningDecision.objects.filter(bill__bill_id=f"S-{i}", action="send")
        )
        assert sent == expected
        assert messages.count() == len(STEPS)
        assert max(Counter((m.step_key, m.channel) for m in messages).values()) == 1
        dates = sorted(
            DunningDecision.objects.filter(bill__bill_id=f"S-{i}")
            .values_list("run_date", flat=True)
            .distinct()
        )
        assert dates == sorted({start + timedelta(days=age) for age, _, _ in STEPS})
        assert Bill.objects.get(bill_id=f"S-{i}").state == BillState.COMPLETED
