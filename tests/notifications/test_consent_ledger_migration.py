"""The data step of notifications 0008 (K3): the opt-out events that existed before the ledger become ledger
rows, with their opt-out's organization, channel and address, and show on the guarantor's consent history and
in the organization's export like the rows written since.

Django's MigrationExecutor takes the database back to 0007 (the old shape: an event knows only its opt-out),
rows are made with the historical models of that state, and the database is migrated forward again
(https://docs.djangoproject.com/en/5.2/topics/migrations/#data-migrations)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from notifications.consent import consent_history, ledger_csv, organization_ledger
from notifications.models import OptOutEvent
from tests.factories import GuarantorFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("notifications", "0007_receipt_kind")]
PATIENT = "+18015550100"


@pytest.fixture
def at_0007() -> Iterator[MigrationExecutor]:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    executor.loader.build_graph()
    yield executor
    # Forward again whatever happened, so the tests after this one find the schema they expect.
    latest = MigrationExecutor(connection)
    latest.migrate(latest.loader.graph.leaf_nodes())


def test_old_opt_out_events_become_ledger_rows(at_0007: MigrationExecutor) -> None:
    org = OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")
    other = OrganizationFactory.create(slug="bright-smiles", name="Bright Smiles")
    guarantor = GuarantorFactory.create(organization=org, external_id="G1", mobile_phone=PATIENT,
                                        email="ana@example.com")  # fmt: skip
    old = at_0007.loader.project_state(BEFORE).apps
    OldOptOut = old.get_model("notifications", "OptOut")
    OldEvent = old.get_model("notifications", "OptOutEvent")
    assert {f.name for f in OldEvent._meta.get_fields()} >= {"opt_out", "active", "source", "keyword", "at"}
    assert "organization" not in {f.name for f in OldEvent._meta.get_fields()}  # the old shape indeed
    stop_at, start_at, again_at = (datetime(2026, 11, d, 17, 0, tzinfo=UTC) for d in (20, 21, 22))
    sms = OldOptOut.objects.create(organization_id=org.pk, channel="sms", address=PATIENT, active=True,
                                   source="sms_keyword", keyword="STOP", changed_at=again_at)  # fmt: skip
    OldEvent.objects.create(opt_out=sms, active=True, source="sms_keyword", keyword="STOP", at=stop_at)
    OldEvent.objects.create(opt_out=sms, active=False, source="sms_keyword", keyword="START", at=start_at)
    OldEvent.objects.create(opt_out=sms, active=True, source="sms_keyword", keyword="STOPALL", at=again_at)
    email = OldOptOut.objects.create(organization_id=org.pk, channel="email", address="ana@example.com",
                                     active=True, source="email_complaint", changed_at=stop_at)  # fmt: skip
    OldEvent.objects.create(opt_out=email, active=True, source="email_complaint", at=stop_at)
    theirs = OldOptOut.objects.create(organization_id=other.pk, channel="sms", address=PATIENT, active=True,
                                      source="staff", changed_at=stop_at)  # fmt: skip
    OldEvent.objects.create(opt_out=theirs, active=True, source="staff", at=stop_at)

    latest = MigrationExecutor(connection)
    latest.migrate(latest.loader.graph.leaf_nodes())

    rows = list(
        OptOutEvent.objects.order_by("at", "pk").values_list(
            "organization__slug", "channel", "address", "active", "source", "keyword", "text", "patient_id",
            "actor_id", "actor_name",
        )
    )  # fmt: skip
    assert rows == [
        ("smile-dental", "sms", PATIENT, True, "sms_keyword", "STOP", "", None, None, ""),
        ("smile-dental", "email", "ana@example.com", True, "email_complaint", "", "", None, None, ""),
        ("bright-smiles", "sms", PATIENT, True, "staff", "", "", None, None, ""),
        ("smile-dental", "sms", PATIENT, False, "sms_keyword", "START", "", None, None, ""),
        ("smile-dental", "sms", PATIENT, True, "sms_keyword", "STOPALL", "", None, None, ""),
    ]  # fmt: skip
    # They are the guarantor's history (its organization's only) and the organization's export.
    guarantor.refresh_from_db()
    history = list(consent_history(guarantor=guarantor).values_list("keyword", "channel"))
    assert history == [("STOPALL", "sms"), ("START", "sms"), ("", "email"), ("STOP", "sms")]
    lines = ledger_csv(events=organization_ledger(organization=org), organization=org).splitlines()
    assert len(lines) == 1 + 4
    assert lines[1].startswith(
        "smile-dental,sms,+18015550100,revocation,sms_keyword,2026-11-20T17:00:00+00:00,"
    )
