"""§13.2 feed additions ``home_phone`` and ``work_phone``: optional patient fields, normalised like the mobile
(I1: E.164, US default region; unparseable is a warning and missing), kept for the after-final call list (A1)
and never texted."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dunning.engine import run_dunning
from dunning.models import DunningSettings, Preset, PresetStep
from notifications.models import Message, Reason, State
from practices.importer import feed_import
from practices.importer.records import Warnings, read_patient
from practices.models import Patient
from tests.factories import AccountFactory, GuarantorFactory, OrganizationFactory, feed_patient
from tests.payments.factories import BillFactory


def test_home_and_work_phones_are_read_as_e164_with_no_unknown_field_warning():
    warnings = Warnings()
    row = read_patient(
        0, feed_patient("P1", home_phone="(801) 555-0111", work_phone="801.555.0122 "), warnings
    )
    assert (row.home_phone, row.work_phone, row.mobile_phone) == (
        "+18015550111",
        "+18015550122",
        "+18015550100",
    )
    assert warnings.as_list() == []


def test_an_unparseable_home_or_work_phone_is_a_warning_and_missing():
    warnings = Warnings()
    row = read_patient(0, feed_patient("P1", home_phone="555-01", work_phone=None), warnings)
    assert (row.home_phone, row.work_phone) == ("", "")
    assert warnings.as_list() == [
        {
            "pointer": "/patients/0/home_phone",
            "message": "unparseable phone number '555-01' stored as missing",
        }
    ]


def test_without_them_a_record_reads_as_before():
    row = read_patient(0, feed_patient("P1"), Warnings())
    assert (row.home_phone, row.work_phone) == ("", "")


@pytest.mark.django_db
def test_an_import_stores_home_and_work_phones(feed_bytes):
    OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    feed_import(raw=feed_bytes(patients=[feed_patient("P1", home_phone="(801) 555-0111", work_phone="")]))
    patient = Patient.objects.get()
    assert (patient.home_phone, patient.work_phone) == ("+18015550111", "")


@pytest.mark.django_db
def test_a_home_or_work_phone_is_never_texted():
    """With no mobile on file, the engine's text is undeliverable (U1), never sent to the home or work line."""
    preset = Preset.objects.create(slug="one-text", name="One text", cycle_days=30, paper_cycle_days=30)
    PresetStep.objects.create(preset=preset, bill_age_days=0, kind="statement", channel="sms")
    org = OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    DunningSettings.objects.create(organization=org, preset=preset)
    patient = GuarantorFactory.create(
        organization=org, mobile_phone="", home_phone="+18015550111", work_phone="+18015550122"
    )
    AccountFactory.create(guarantor=patient)
    BillFactory.create(organization=org, guarantor=patient, effective_created_date=date(2026, 6, 1))
    run_dunning(organization=org, on=date(2026, 6, 1), now=datetime(2026, 6, 1, 18, tzinfo=UTC))
    message = Message.objects.get()
    assert (message.state, message.reason, message.destination) == (
        State.UNDELIVERED,
        Reason.NO_DESTINATION,
        "",
    )
