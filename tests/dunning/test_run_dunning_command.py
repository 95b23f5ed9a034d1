from __future__ import annotations

import json
from datetime import UTC, date, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dunning.models import DunningSettings, Preset, PresetStep
from notifications.models import Message
from practices.models import Bill
from tests.factories import AccountFactory, GuarantorFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    preset = Preset.objects.create(slug="cmd", name="Cmd", cycle_days=30, paper_cycle_days=30)
    for age, channel in [(0, "email"), (0, "sms"), (30, "email")]:
        PresetStep.objects.create(
            preset=preset, bill_age_days=age, kind="statement" if age == 0 else "due", channel=channel
        )
    organization = OrganizationFactory.create(slug="smile", timezone="UTC")
    DunningSettings.objects.create(organization=organization, preset=preset)
    patient = GuarantorFactory.create(
        organization=organization, external_id="P1", email="a@x.org", mobile_phone="+18015550100"
    )
    AccountFactory.create(guarantor=patient)
    moment = datetime(2026, 6, 1, tzinfo=UTC)
    Bill.objects.create(organization=organization, guarantor=patient, bill_id="S-1", source="statement", amount_due="40.00",
                        created_at=moment, effective_created_date=date(2026, 6, 1), last_seen_at=moment)  # fmt: skip
    return organization


def run(*args):
    out = StringIO()
    call_command("run_dunning", *args, stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def test_run_dunning_prints_this_runs_decisions_and_nothing_the_second_time(org):
    rows = run("--org", "smile", "--date", "2026-06-01", "--json")
    assert rows == [
        {"bill_id": "S-1", "generation": 1, "bill_age_days": 0, "step_age_days": 0, "kind": "statement", "channel": c,
         "action": "send", "reason": ""} for c in ("email", "sms")
    ]  # fmt: skip
    assert run("--org", "smile", "--date", "2026-06-01", "--json") == []


def test_dry_run_prints_and_writes_nothing(org):
    assert len(run("--org", "smile", "--date", "2026-06-01", "--dry-run", "--json")) == 2
    assert not Message.objects.exists()
    assert len(run("--org", "smile", "--date", "2026-06-01", "--json")) == 2


@pytest.mark.parametrize(
    "args",
    [("--org", "nope"), ("--org", "smile", "--date", "06/01/2026"), ("--org", "smile", "--date", "20260601")],
)
def test_bad_input_exits_2(org, args):
    with pytest.raises(CommandError) as exc:
        call_command("run_dunning", *args, stdout=StringIO(), stderr=StringIO())
    assert exc.value.returncode == 2
