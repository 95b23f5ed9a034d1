"""The consent ledger (K3): every grant and revocation per organization, channel and address, with its source,
time, actor and text, as the guarantor page and its CSV show them to the front desk.

Each row is made the way it happens: a STOP through the signed Twilio incoming-message webhook (the form
Twilio documents, https://www.twilio.com/docs/messaging/guides/webhook-request), a spam complaint through
anymail's tracking webhook in Postmark's documented shape
(https://postmarkapp.com/developer/webhooks/spam-complaint-webhook), a quick-add with consent on the
undeliverable list, and feed imports that change ``sms_consent`` (docs/feed-format.md, SPEC §13.2)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.urls import reverse

from notifications.models import Channel, Kind, Message, OptOut, OptOutEvent, OptOutSource, Reason, State
from practices.importer import feed_import
from practices.models import AuditEvent, Patient, Role
from tests.factories import (
    GuarantorFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    feed_patient,
)
from tests.fakes.twilio_server import FakeTwilio
from tests.notifications.test_email_tracking import SECRET, WORLDS

pytestmark = pytest.mark.django_db

INBOUND = "/webhooks/twilio/inbound/"
SENDER = "+18015550000"
PATIENT = "+18015550100"
EMAIL = "ana@example.com"  # the address the Postmark payloads of test_email_tracking name
DAYTIME = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 10:00 in Denver


@pytest.fixture
def twilio(settings) -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = fake.account_sid, fake.auth_token
    settings.PUBLIC_BASE_URL = "https://billing.example.org"
    settings.TWILIO_ADVANCED_OPT_OUT = True
    yield fake


@pytest.fixture
def org():
    return OrganizationFactory.create(
        slug="smile-dental", name="Smile Dental", timezone="America/Denver", twilio_from_number=SENDER
    )


@pytest.fixture
def guarantor(org):
    return GuarantorFactory.create(organization=org, external_id="G1", mobile_phone=PATIENT, email=EMAIL)


@pytest.fixture
def front_desk(org):
    user = UserFactory.create(username="maria", first_name="Maria", last_name="Lopez", is_staff=False)
    MembershipFactory.create(organization=org, user=user, role=Role.FRONT_DESK)
    return user


def stop_by_text(client, twilio: FakeTwilio, body: str, *, number: str = PATIENT) -> None:
    params = twilio.inbound_params(from_number=number, to=SENDER, body=body)
    signature = twilio.sign("https://billing.example.org" + INBOUND, params)
    assert client.post(INBOUND, params, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200


def page(client, org, guarantor) -> str:
    response = client.get(reverse("payments_dashboard:guarantor", args=[org.slug, guarantor.external_id]))
    assert response.status_code == 200
    return response.content.decode()


def csv_rows(client, org, guarantor) -> list[dict[str, str]]:
    response = client.get(
        reverse("payments_dashboard:guarantor-consent-csv", args=[org.slug, guarantor.external_id])
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="consent-{org.slug}-G1.csv"'
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_stop_by_text_is_a_revocation_with_its_exact_text_on_the_page_and_in_the_csv(
    client, twilio, org, guarantor, front_desk
):
    with time_machine.travel(DAYTIME, tick=False):
        stop_by_text(client, twilio, "Stop ")

    event = OptOutEvent.objects.get()
    assert (event.organization, event.channel, event.address, event.active, event.source) == (
        org, Channel.SMS, PATIENT, True, OptOutSource.SMS_KEYWORD,
    )  # fmt: skip
    assert (event.keyword, event.text, event.actor, event.at) == ("STOP", "Stop ", None, DAYTIME)
    client.force_login(front_desk)
    html = page(client, org, guarantor)
    assert "Consent history" in html and "Time (America/Denver)" in html
    assert "Nov 24, 2026 10:00 AM MST" in html
    assert "SMS keyword (STOP/START)" in html and "Revoked" in html
    [row] = csv_rows(client, org, guarantor)
    assert row == {
        "organization": "smile-dental", "channel": "sms", "address": PATIENT, "event": "revocation",
        "source": "sms_keyword", "at_utc": "2026-11-24T17:00:00+00:00", "at_local": "2026-11-24T10:00:00-07:00",
        "time_zone": "America/Denver", "actor": "patient", "keyword": "STOP", "text": "Stop ",
        "patient_external_id": "", "ledger_id": str(event.pk),
    }  # fmt: skip


def test_an_esp_spam_complaint_is_an_email_revocation_with_the_event(
    client, settings, org, guarantor, front_desk
):
    world = WORLDS["postmark"]
    settings.EMAIL_ENABLED, settings.ANYMAIL_ESP = True, world.esp
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    message = Message.objects.create(
        organization=org, patient=guarantor, channel=Channel.EMAIL, kind=Kind.REQUEST, body="x",
        subject="Your balance", destination=EMAIL, state=State.DELIVERED, provider_id=world.provider_id,
    )  # fmt: skip

    assert world.post(client, "complaint", message).status_code == 200

    event = OptOutEvent.objects.get()
    assert (event.channel, event.address, event.active, event.source) == (
        Channel.EMAIL, EMAIL, True, OptOutSource.EMAIL_COMPLAINT,
    )  # fmt: skip
    # The ESP, the normalized event, Postmark's own ID and the reason anymail gives (reject_reason "spam").
    assert event.text == "Postmark complained (event 4323372036854775807): spam"
    client.force_login(front_desk)
    assert "Email spam complaint" in page(client, org, guarantor)
    [row] = csv_rows(client, org, guarantor)
    assert (row["channel"], row["address"], row["event"], row["source"]) == (
        "email", EMAIL, "revocation", "email_complaint",
    )  # fmt: skip
    assert row["text"] == event.text


def test_a_quick_add_with_consent_is_a_grant_by_the_named_user(client, org, guarantor, front_desk):
    message = Message.objects.create(
        organization=org, patient=guarantor, kind=Kind.REQUEST, channel=Channel.SMS, body="Smile Dental: $120 due.",
        state=State.UNDELIVERED, reason=Reason.LANDLINE, destination=PATIENT,
    )  # fmt: skip
    client.force_login(front_desk)

    with time_machine.travel(DAYTIME, tick=False):
        response = client.post(
            reverse("notifications_dashboard:undeliverable-resend", args=[message.pk]),
            {"action": "quick_add", "mobile_number": "(801) 555-0123", "consented": "on"},
        )

    assert response.status_code == 302
    event = OptOutEvent.objects.get()
    assert (event.channel, event.address, event.active, event.source, event.patient) == (
        Channel.SMS, "+18015550123", False, OptOutSource.QUICK_ADD, guarantor,
    )  # fmt: skip
    assert (event.actor, event.actor_name, event.at, event.opt_out) == (
        front_desk,
        "Maria Lopez",
        DAYTIME,
        None,
    )
    html = page(client, org, guarantor)
    assert "Consent recorded by staff (quick-add)" in html and "Maria Lopez" in html and "Granted" in html
    [row] = csv_rows(client, org, guarantor)
    assert (row["address"], row["event"], row["actor"], row["patient_external_id"]) == (
        "+18015550123", "grant", "Maria Lopez", "G1",
    )  # fmt: skip


def test_a_quick_add_refused_for_want_of_consent_records_nothing(client, org, guarantor, front_desk):
    message = Message.objects.create(
        organization=org, patient=guarantor, kind=Kind.REQUEST, channel=Channel.SMS, body="x",
        state=State.UNDELIVERED, reason=Reason.LANDLINE, destination=PATIENT,
    )  # fmt: skip
    client.force_login(front_desk)
    client.post(
        reverse("notifications_dashboard:undeliverable-resend", args=[message.pk]),
        {"action": "quick_add", "mobile_number": "(801) 555-0123"},
    )
    assert not OptOutEvent.objects.exists()


def test_an_import_records_the_pms_consent_flag_only_when_it_changes(client, org, front_desk, feed_bytes):
    def imported(generated_at: str, **fields: Any) -> None:
        summary = feed_import(
            raw=feed_bytes(
                generated_at=generated_at, patients=[feed_patient("G1", mobile_phone=PATIENT, **fields)]
            )
        )
        assert summary.errors == []

    imported("2026-11-20T06:00:00Z")  # new, sms_consent unknown: nothing to record
    assert not OptOutEvent.objects.exists()
    imported("2026-11-21T06:00:00Z", sms_consent="yes")
    imported("2026-11-22T06:00:00Z", sms_consent="yes")  # unchanged: no row
    imported("2026-11-23T06:00:00Z", sms_consent="no")

    guarantor = Patient.objects.get(external_id="G1")
    rows = list(
        OptOutEvent.objects.order_by("at").values_list(
            "channel", "address", "active", "source", "text", "patient"
        )
    )
    assert rows == [
        ("sms", PATIENT, False, "pms_flag", "PMS sms_consent: unknown → yes (feed import)", guarantor.pk),
        ("sms", PATIENT, True, "pms_flag", "PMS sms_consent: yes → no (feed import)", guarantor.pk),
    ]
    assert not OptOut.objects.exists()  # the PMS flag is read from the patient, never written as an opt-out
    client.force_login(front_desk)
    html = page(client, org, guarantor)
    assert "PMS consent flag (feed import)" in html and "PMS sms_consent: yes → no (feed import)" in html
    exported = csv_rows(client, org, guarantor)
    assert [(row["event"], row["actor"], row["at_utc"]) for row in exported] == [
        ("revocation", "PMS", "2026-11-23T06:00:00+00:00"),
        ("grant", "PMS", "2026-11-21T06:00:00+00:00"),
    ]


def test_a_new_patient_with_consent_and_a_pms_opt_out_is_recorded_at_once(org, feed_bytes):
    feed_import(
        raw=feed_bytes(
            patients=[feed_patient("G1", mobile_phone=PATIENT, sms_consent="yes", email_opt_out=True)]
        )
    )
    assert sorted(OptOutEvent.objects.values_list("channel", "address", "active", "text")) == [
        ("email", "g1@example.com", True, "PMS pms_email_opt_out: (new patient) → yes (feed import)"),
        ("sms", PATIENT, False, "PMS sms_consent: (new patient) → yes (feed import)"),
    ]


def test_another_organizations_rows_never_show(client, twilio, org, guarantor, front_desk):
    other = OrganizationFactory.create(
        slug="other-dental", name="Other Dental", twilio_from_number="+18015550001"
    )
    theirs = GuarantorFactory.create(organization=other, external_id="G1", mobile_phone=PATIENT, email=EMAIL)
    params = twilio.inbound_params(from_number=PATIENT, to="+18015550001", body="STOP")
    signature = twilio.sign("https://billing.example.org" + INBOUND, params)
    assert client.post(INBOUND, params, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200
    assert OptOutEvent.objects.get().organization == other

    client.force_login(front_desk)
    assert "No consent recorded yet." in page(client, org, guarantor)
    assert csv_rows(client, org, guarantor) == []
    for name in ("payments_dashboard:guarantor", "payments_dashboard:guarantor-consent-csv"):
        assert client.get(reverse(name, args=[other.slug, theirs.external_id])).status_code == 404


def test_a_spreadsheet_formula_in_a_reply_is_neutralised_in_the_csv_only(client, org, guarantor, front_desk):
    from notifications.optouts import opt_out_set

    opt_out_set(organization=org, channel=Channel.SMS, address=PATIENT, active=True, source=OptOutSource.STAFF,
                text='=HYPERLINK("http://evil.example")', actor=front_desk)  # fmt: skip
    assert OptOutEvent.objects.get().text == '=HYPERLINK("http://evil.example")'
    client.force_login(front_desk)
    [row] = csv_rows(client, org, guarantor)
    assert row["text"] == '\'=HYPERLINK("http://evil.example")' and row["actor"] == "Maria Lopez"
    # T5: each download of a guarantor's proof is on the audit trail (who, which guarantor).
    [audit] = AuditEvent.objects.filter(action="consent.history_exported")
    assert (audit.organization, audit.actor, audit.changes) == (org, front_desk, {"guarantor": "G1"})


def test_text_the_database_cannot_hold_is_kept_readable(org):
    from notifications.optouts import opt_out_set

    opt_out_set(organization=org, channel=Channel.SMS, address=PATIENT, active=True,
                source=OptOutSource.SMS_KEYWORD, text="STOP\x00\ud800" + "x" * 5000)  # fmt: skip
    text = OptOutEvent.objects.get().text
    assert text.startswith("STOP\ufffd?") and len(text) == 2000
