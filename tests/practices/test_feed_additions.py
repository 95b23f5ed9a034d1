"""SPEC §13.2 feed additions as the importer stores them: on patients ``sms_consent``, ``preferred_name``,
``language``, ``care_of`` and ``deceased`` (``home_phone``/``work_phone``: test_feed_call_phones.py); on
statements ``patient_id`` (test_real_practice_data.py) and ``sent_by_pms``. All optional.

What they do downstream is tested where it happens: the engine (tests/dunning/test_feed_additions_engine.py),
the outbox and templates (tests/notifications/test_feed_additions_messages.py)."""

from __future__ import annotations

from datetime import date

import pytest

from payments.eligibility import eligible_guarantors
from practices.importer import feed_import
from practices.models import Bill, BillState, Patient
from tests.factories import OrganizationFactory, feed_patient, feed_statement

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")


def test_the_patient_additions_are_stored(org, feed_bytes):
    summary = feed_import(
        raw=feed_bytes(
            patients=[
                feed_patient(
                    "P1", first_name="Guadalupe", preferred_name="Lupita", language="es", sms_consent="yes",
                    care_of="Rosa Ortega",
                ),
                feed_patient("P2"),
            ]
        )
    )  # fmt: skip
    assert (summary.errors, summary.warnings) == ([], [])
    assert list(
        Patient.objects.order_by("external_id").values_list(
            "preferred_name", "language", "sms_consent", "care_of", "deceased"
        )
    ) == [("Lupita", "es", "yes", "Rosa Ortega", False), ("", "", "unknown", "", False)]


@pytest.mark.parametrize(
    ("typed", "code", "warning"),
    [
        ("es", "es", None),
        ("ES", "es", None),
        ("es-MX", "es", None),
        ("spa", "es", "language 'spa' read as 'es' (ISO 639-1)"),
        ("Spanish", "es", "language 'Spanish' read as 'es' (ISO 639-1)"),
        ("Klingon", "", "unknown language 'Klingon' ignored: English is used"),
    ],
)
def test_a_language_is_read_as_iso_639_1(org, feed_bytes, typed, code, warning):
    summary = feed_import(raw=feed_bytes(patients=[feed_patient("P1", language=typed)]))
    assert Patient.objects.get().language == code
    assert summary.warnings == ([{"pointer": "/patients/0/language", "message": warning}] if warning else [])


@pytest.mark.parametrize(
    ("typed", "stored"), [("Yes", "yes"), ("NO", "no"), ("maybe", "unknown"), (True, "unknown")]
)
def test_sms_consent_takes_yes_no_unknown_in_any_case_else_unknown_with_a_warning(
    org, feed_bytes, typed, stored
):
    summary = feed_import(raw=feed_bytes(patients=[feed_patient("P1", sms_consent=typed)]))
    assert summary.errors == []
    assert Patient.objects.get().sms_consent == stored
    assert bool(summary.warnings) == (stored == "unknown")


def test_sent_by_pms_is_stored_on_the_bill(org, feed_bytes):
    summary = feed_import(
        raw=feed_bytes(
            patients=[feed_patient("P1")],
            statements=[
                feed_statement("S-1", "P1", sent_by_pms="mail"),
                feed_statement("S-2", "P1", sent_by_pms="email"),
                feed_statement("S-3", "P1"),
                feed_statement("S-4", "P1", sent_by_pms="fax"),
            ],
        )
    )
    assert summary.errors == []
    assert dict(Bill.objects.values_list("bill_id", "sent_by_pms")) == {
        "S-1": "mail", "S-2": "email", "S-3": "none", "S-4": "none"
    }  # fmt: skip
    assert summary.warnings == [
        {
            "pointer": "/statements/3/sent_by_pms",
            "message": "'fax' is not one of email, mail, none: read as 'none'",
        }
    ]


def test_a_deceased_guarantor_gets_nothing_and_every_campaign_closes(org, feed_bytes):
    feed_import(
        raw=feed_bytes(
            patients=[feed_patient("P1"), feed_patient("K1", "P1")],
            statements=[feed_statement("S-1", "P1"), feed_statement("S-2", "K1")],
        )
    )
    summary = feed_import(
        raw=feed_bytes(
            generated_at="2026-11-25T06:00:00Z",
            # A visit after the statements' start: without the flag, R7 would let the guarantor back on the list.
            patients=[
                feed_patient("P1", deceased=True, last_visit_date="2026-11-22"),
                feed_patient("K1", "P1"),
            ],
            statements=[feed_statement("S-1", "P1"), feed_statement("S-2", "K1")],
        )
    )
    assert summary.errors == []
    assert set(Bill.objects.values_list("bill_id", "state", "closed_reason")) == {
        ("S-1", BillState.CLOSED, "deceased"),
        ("S-2", BillState.CLOSED, "deceased"),
    }
    guarantor = Patient.objects.get(external_id="P1")
    assert (guarantor.deceased, guarantor.do_not_contact) == (True, True)
    # Off the bulk list (R11): no campaign is active any more (R6) and it visited since (R7).
    assert eligible_guarantors(organization=org, on=date(2026, 11, 25)).count() == 0


def test_the_published_schema_documents_the_feed_additions(client):
    schema = client.get("/api/v1/openapi.json").json()
    body = schema["paths"]["/api/v1/feeds"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    patient, anything = body["properties"]["patients"]["items"]["anyOf"]
    statement = body["properties"]["statements"]["items"]["anyOf"][0]
    assert anything == {}  # a record off the shape is rejected on its own (I2), not the document (400)
    assert {
        "home_phone",
        "work_phone",
        "sms_consent",
        "preferred_name",
        "language",
        "care_of",
        "deceased",
    } <= set(patient["properties"])
    assert patient["properties"]["sms_consent"]["enum"] == ["yes", "no", "unknown"]
    assert statement["properties"]["sent_by_pms"]["enum"] == ["mail", "email", "none"]
    assert "patient_id" in statement["properties"]
