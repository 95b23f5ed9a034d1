"""D1 under concurrency: two runs for one organization and date send each message once (PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest

from dunning.engine import run_dunning
from dunning.models import DunningDecision, DunningSettings, Preset, PresetStep
from notifications.models import Message
from practices.models import Bill
from tests.concurrency import in_threads
from tests.factories import AccountFactory, GuarantorFactory, OrganizationFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_concurrent_runs_send_each_message_once(monkeypatch):
    monkeypatch.setattr("notifications.outbox._enqueue", lambda ids: None)
    preset = Preset.objects.create(slug="c", name="C", cycle_days=30, paper_cycle_days=30)
    for channel in ("email", "sms"):
        PresetStep.objects.create(preset=preset, bill_age_days=0, kind="statement", channel=channel)
    org = OrganizationFactory.create(timezone="UTC")
    DunningSettings.objects.create(organization=org, preset=preset)
    moment = datetime(2026, 6, 1, tzinfo=UTC)
    for i in range(200):
        patient = GuarantorFactory.create(
            organization=org, external_id=f"P{i}", mobile_phone="+18015550100", email=f"p{i}@x.org"
        )
        AccountFactory.create(guarantor=patient)
        Bill.objects.create(organization=org, guarantor=patient, bill_id=f"S-{i}", source="statement", amount_due="50.00",
                            created_at=moment, effective_created_date=date(2026, 6, 1), last_seen_at=moment)  # fmt: skip

    def job():
        return run_dunning(organization=org, on=date(2026, 6, 1), now=datetime(2026, 6, 1, 15, tzinfo=UTC))

    results = in_threads(job, job)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(len(r) for r in results) == 400
    assert Message.objects.count() == 400
    assert max(Counter(Message.objects.values_list("bill_id", "channel")).values()) == 1
    assert DunningDecision.objects.count() == 400
