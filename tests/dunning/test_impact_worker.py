"""A real round trip (W1): a preview started by the service is queued on commit, and a Celery worker on the
local Redis takes it from pending to done with its progress at 100 %. Needs Redis; skipped without one unless
REQUIRE_SERVICES=1."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import transaction

from dunning.impact import current_values, impact_preview_start
from dunning.models import DunningSettings, Preset, PreviewStatus, SettingsPreview
from dunning_project.celery import app
from practices.models import Bill
from tests.factories import AccountFactory, GuarantorFactory, OrganizationFactory

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker():
    import dunning.tasks  # noqa: F401  (registers the tasks on the app)

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield


def test_a_worker_computes_a_preview_queued_on_commit(worker):
    org = OrganizationFactory.create(slug="worker-org", timezone="UTC")
    DunningSettings.objects.update_or_create(organization=org,
                                             defaults={"preset": Preset.objects.get(slug="standard-30")})  # fmt: skip
    patient = GuarantorFactory.create(organization=org, external_id="G1", mobile_phone="+18015550100")
    AccountFactory.create(guarantor=patient)
    start = date(2026, 11, 24)
    moment = datetime(2026, 11, 24, tzinfo=UTC)
    Bill.objects.create(organization=org, guarantor=patient, bill_id="S-1", source="statement", statement_date=start,
                        amount_due="80.00", created_at=moment, effective_created_date=start, last_seen_at=moment)  # fmt: skip
    with transaction.atomic():
        preview = impact_preview_start(organization=org, kind="dunning", user=None, today=start,
                                       proposed={**current_values(organization=org), "min_print": "100.00"})  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        preview = SettingsPreview.objects.get(pk=preview.pk)
        if preview.status in (PreviewStatus.DONE, PreviewStatus.FAILED):
            break
        time.sleep(0.1)
    assert (preview.status, preview.progress, preview.error) == (PreviewStatus.DONE, 100, "")
    assert preview.result is not None
    assert (preview.result["current"]["paper_letters"], preview.result["proposed"]["paper_letters"]) == (1, 0)
