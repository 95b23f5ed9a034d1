"""The impact preview's forecast (W1): the engine's own rules over the coming days, without writing.

The strongest check is the engine itself: a forecast of 30 days is compared, day by day and channel by
channel, with what ``run_dunning`` then really decides on each of those days in the same world (D1-D13)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from dunning.engine import run_dunning
from dunning.impact.forecast import forecast
from dunning.models import DunningDecision, DunningSettings, Preset
from notifications.models import Message, NotificationSettings, OptOut
from payments.models import PaymentSettings, Snooze
from practices.models import Bill, BillState
from tests.factories import AccountFactory, GuarantorFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

D0 = date(2026, 6, 1)
DAYS = 30


@pytest.fixture
def org():
    organization = OrganizationFactory.create(slug="smile", name="Smile Dental", timezone="America/Denver")
    DunningSettings.objects.create(organization=organization, preset=Preset.objects.get(slug="standard-30"))
    return organization


def guarantor(org, pid, **kw):
    defaults = {"mobile_phone": "+18015550100", "email": f"{pid.lower()}@example.com", "address_line1": "1 Main St",
                "address_city": "Salt Lake City", "address_state": "UT", "address_zip": "84101", "address_status": "valid",
                "timezone": "America/Denver"}  # fmt: skip
    patient = GuarantorFactory.create(organization=org, external_id=pid, **{**defaults, **kw})
    AccountFactory.create(guarantor=patient)
    return patient


def bill(org, patient, bill_id, start, amount="100.00", source="statement", **kw) -> Bill:
    moment = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
    return Bill.objects.create(organization=org, guarantor=patient, bill_id=bill_id, source=source, statement_date=start,
                               amount_due=Decimal(amount), created_at=moment, effective_created_date=start,
                               last_seen_at=moment, **kw)  # fmt: skip


def run(org, day):
    now = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=18)
    return run_dunning(organization=org, on=day, now=now)


def world(org) -> None:
    """Bills at every point of the schedule, with the facts the rules read: a history made by real runs."""
    # Some history first: bills that started before D0 and were dunned by the engine on their way. K6: two
    # guarantors with open insurance claims (3 and 1), held by the history's runs when a limit of 2 or 0 is set.
    old = [
        bill(org, guarantor(org, f"H{n}"), f"H-{n}", D0 - timedelta(days=age))
        for n, age in enumerate((5, 25, 50, 80))
    ]
    bill(org, guarantor(org, "I1", open_claims=3), "I-1", D0 - timedelta(days=20))
    bill(org, guarantor(org, "I2", open_claims=1), "I-2", D0 - timedelta(days=100))  # held past its last step
    for day in range(80, 0, -1):
        run(org, D0 - timedelta(days=day))
    assert all(b.generation == 1 for b in old)
    bill(org, guarantor(org, "N1"), "N-1", D0)  # new today
    bill(org, guarantor(org, "N2"), "N-2", D0 + timedelta(days=7))  # its clock starts next week
    bill(org, guarantor(org, "L1"), "L-1", D0 - timedelta(days=40))  # imported late: catch-up (D2)
    bill(org, guarantor(org, "T1"), "T-1", D0 - timedelta(days=3), amount="4.00")  # below thresholds
    bill(org, guarantor(org, "O1", pms_sms_opt_out=True), "O-1", D0 - timedelta(days=20))
    opted = guarantor(org, "O2")
    OptOut.objects.create(
        organization=org, channel="email", address=opted.email, source="stop", changed_at=datetime.now(UTC)
    )
    OptOut.objects.create(organization=org, channel="sms", address=opted.mobile_phone, source="stop",
                          changed_at=datetime.now(UTC))  # fmt: skip
    bill(org, opted, "O-2", D0 - timedelta(days=28))  # every electronic channel opted out: drop to paper (D5)
    bill(org, guarantor(org, "C1", do_not_contact=True), "C-1", D0 - timedelta(days=2))
    bill(
        org,
        guarantor(org, "A1", address_status="invalid", email="", mobile_phone=""),
        "A-1",
        D0 - timedelta(days=29),
    )
    snoozed = guarantor(org, "Z1")
    Snooze.objects.create(
        organization=org, guarantor=snoozed, until=D0 + timedelta(days=6), reason="Insurance"
    )
    bill(org, snoozed, "Z-1", D0 - timedelta(days=12))
    bill(org, guarantor(org, "R1"), "REQ-1", D0 - timedelta(days=1), source="request")
    bill(
        org, guarantor(org, "U1"), "U-1", D0 - timedelta(days=15), amount_changed=True
    )  # a bill update (D10)
    bill(org, guarantor(org, "F1"), "F-1", D0 - timedelta(days=88))  # finishes its schedule in the window
    bill(org, guarantor(org, "P1"), "P-1", D0 - timedelta(days=10), state=BillState.PAID)  # ended: nothing
    # §13.2: statements the PMS already mailed or emailed (their age-0 step on that channel is skipped), and
    # patients whose PMS records no consent to texts (skipped when the organization requires it).
    bill(org, guarantor(org, "M1"), "M-1", D0 + timedelta(days=2), sent_by_pms="mail")
    bill(org, guarantor(org, "E1"), "E-1", D0 - timedelta(days=40), sent_by_pms="email")
    bill(org, guarantor(org, "K1", sms_consent="no"), "K-1", D0 - timedelta(days=9))
    bill(org, guarantor(org, "K2", sms_consent="yes"), "K-2", D0 - timedelta(days=9))


def engine_sends(org, days) -> list[dict[str, int]]:
    out = []
    for day in days:
        run(org, day)
        counts = Counter(
            DunningDecision.objects.filter(organization=org, run_date=day, action="send").values_list(
                "channel", flat=True
            )
        )
        out.append({channel: counts.get(channel, 0) for channel in ("sms", "email", "paper")})
    return out


SETTINGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "texts need consent": {"require_sms_consent": True},
    "paper rules, thresholds and updates": {"drop_to_paper_on_opt_out": True, "skip_paper_when_electronic": True,
                                            "min_electronic": Decimal("5.00"), "min_print": Decimal("3.00"),
                                            "communicate_on_update": True},
    # K6: held throughout the window; a limit raised after the history releases one of the two on D0 (the
    # catch-up of D2); a limit removed releases both.
    "claims held": {"history_claims": 0, "max_open_claims": 0},
    "claims limit raised": {"history_claims": 0, "max_open_claims": 2},
    "claims limit removed": {"history_claims": 0, "max_open_claims": None},
}  # fmt: skip


@pytest.mark.parametrize("changes", [dict(c) for c in SETTINGS.values()], ids=SETTINGS.keys())
def test_the_forecast_is_what_the_engine_then_decides_each_day(org, changes):
    if "history_claims" in changes:
        PaymentSettings.objects.update_or_create(
            organization=org, defaults={"max_open_claims": changes.pop("history_claims")}
        )
    world(org)
    if "max_open_claims" in changes:
        PaymentSettings.objects.filter(organization=org).update(
            max_open_claims=changes.pop("max_open_claims")
        )
        assert Bill.objects.filter(claims_held=True).count() == 2  # both held by the history
    if changes.pop("require_sms_consent", False):
        NotificationSettings.objects.update_or_create(
            organization=org, defaults={"require_sms_consent": True}
        )
    DunningSettings.objects.filter(organization=org).update(**changes)
    settings = DunningSettings.objects.get(organization=org)
    days = [D0 + timedelta(days=n) for n in range(DAYS)]
    active = Bill.objects.filter(organization=org, state=BillState.ACTIVE).count()

    [predicted] = forecast(organization=org, settings=[settings], start=D0, days=DAYS)

    assert predicted.days == days
    assert sum(predicted.total(c) for c in ("sms", "email", "paper")) > 20  # a world with something to say
    actual = engine_sends(org, days)
    assert predicted.sends == actual
    assert (
        predicted.completed == active - Bill.objects.filter(organization=org, state=BillState.ACTIVE).count()
    )


def test_a_forecast_under_another_preset_is_what_the_engine_does_once_it_is_saved(org):
    """A preset change starts the new schedule's steps undecided: the engine catches up on them (D2) when
    each bill's stored next date comes; the forecast must show that burst, not a clean start."""
    world(org)
    accelerated = DunningSettings(organization=org, preset=Preset.objects.get(slug="accelerated-14"))
    current = DunningSettings.objects.get(organization=org)
    days = [D0 + timedelta(days=n) for n in range(DAYS)]

    before, after = forecast(organization=org, settings=[current, accelerated], start=D0, days=DAYS)

    assert before.sends != after.sends
    DunningSettings.objects.filter(organization=org).update(preset=accelerated.preset)
    assert after.sends == engine_sends(org, days)


def test_a_forecast_writes_nothing(org):
    world(org)
    counts = (DunningDecision.objects.count(), Message.objects.count(), Bill.objects.count())
    states = list(Bill.objects.order_by("pk").values_list("state", "next_dunning_date", "amount_changed"))
    settings = DunningSettings.objects.get(organization=org)

    forecast(organization=org, settings=[settings], start=D0, days=DAYS)

    assert (DunningDecision.objects.count(), Message.objects.count(), Bill.objects.count()) == counts
    assert (
        list(Bill.objects.order_by("pk").values_list("state", "next_dunning_date", "amount_changed"))
        == states
    )


def test_the_read_reports_its_progress_up_to_the_end(org):
    world(org)
    heard: list[tuple[float, str]] = []
    forecast(organization=org, settings=[DunningSettings.objects.get(organization=org)], start=D0, days=DAYS,
             progress=lambda fraction, stage: heard.append((fraction, stage)))  # fmt: skip
    fractions = [f for f, _ in heard]
    assert fractions == sorted(fractions)
    assert fractions[0] == 0.0 and fractions[-1] == 1.0


def test_no_preset_forecasts_no_messages(org):
    world(org)
    [result] = forecast(
        organization=org, settings=[DunningSettings(organization=org, preset=None)], start=D0, days=5
    )
    assert result.sends == [{"sms": 0, "email": 0, "paper": 0}] * 5
