"""The consent ledger's organization-wide export (K3) and the replies review items (K4) in the Django admin:
billing managers download every ledger row of their organizations as CSV, as proof; nobody changes a row here;
another organization's ledger or reply answers 404 (T1).

The rows are made the way they happen: STOP through the signed Twilio incoming-message webhook (the form
Twilio documents, https://www.twilio.com/docs/messaging/guides/webhook-request), a staff opt-out, a quick-add
consent, an import's PMS flag."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from notifications.consent import CSV_HEADER, consent_from_pms, consent_record
from notifications.models import Channel, InboundReview, OptOutEvent, OptOutSource, ReviewState
from notifications.optouts import opt_out_set
from practices.importer.consent import ConsentChange
from practices.models import AuditEvent, Role
from tests.factories import GuarantorFactory, MembershipFactory, OrganizationFactory, UserFactory
from tests.fakes.twilio_server import FakeTwilio

pytestmark = pytest.mark.django_db

INBOUND = "/webhooks/twilio/inbound/"
SENDER = "+18015550000"
PATIENT = "+18015550100"
T0 = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 10:00 in Denver


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
def other():
    return OrganizationFactory.create(slug="bright-smiles", name="Bright Smiles", timezone="America/Chicago")


@pytest.fixture
def manager(org, other):
    """Billing manager at Smile Dental, only front desk at Bright Smiles."""
    user = UserFactory.create(username="bm", first_name="Bea", last_name="Moss", is_staff=True)
    MembershipFactory.create(organization=org, user=user, role=Role.BILLING_MANAGER)
    MembershipFactory.create(organization=other, user=user, role=Role.FRONT_DESK)
    return user


def stop_by_text(client, twilio: FakeTwilio, body: str) -> None:
    params = twilio.inbound_params(from_number=PATIENT, to=SENDER, body=body)
    signature = twilio.sign("https://billing.example.org" + INBOUND, params)
    assert client.post(INBOUND, params, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200


def export(client, slug: str):
    return client.get(reverse("admin:notifications_optoutevent_export", args=[slug]))


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_billing_manager_exports_the_whole_ledger_of_the_organization_oldest_first(
    client, twilio, org, other, manager
):
    patient = GuarantorFactory.create(organization=org, external_id="G1", mobile_phone=PATIENT)
    with time_machine.travel(T0, tick=False):
        stop_by_text(client, twilio, "STOP")
    consent_record(organization=org, channel=Channel.SMS, address="+18015550111", active=False,
                   source=OptOutSource.QUICK_ADD, patient=patient, actor=manager,
                   text="Consent confirmed by phone", at=datetime(2026, 11, 25, 3, 30, tzinfo=UTC))  # fmt: skip
    # A patient's words that a spreadsheet would run: kept as they are in the ledger, neutralised in the CSV.
    opt_out_set(organization=org, channel=Channel.EMAIL, address="ana@example.com", active=True,
                source=OptOutSource.STAFF, actor=manager, text='=HYPERLINK("http://x.example","stop")',
                at=datetime(2026, 11, 26, 15, 0, tzinfo=UTC))  # fmt: skip
    consent_from_pms(org, [ConsentChange(patient_id=patient.pk, channel=Channel.SMS, address=PATIENT,
                                         field="sms_consent", old="unknown", new="yes")],
                     datetime(2026, 11, 27, 12, 0, tzinfo=UTC))  # fmt: skip
    opt_out_set(organization=other, channel=Channel.SMS, address=PATIENT, active=True,
                source=OptOutSource.STAFF, text="other practice", at=T0)  # fmt: skip
    ids = list(OptOutEvent.objects.filter(organization=org).order_by("at", "pk").values_list("pk", flat=True))
    client.force_login(manager)

    index = client.get(reverse("admin:index")).content.decode()
    assert ">Consent ledger</a>" in index and "Opt out events" not in index
    listing = client.get(reverse("admin:notifications_optoutevent_changelist"))
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "Export Smile Dental's consent ledger (CSV)</a>" in page
    assert "Bright Smiles" not in page  # front desk there: neither its rows nor its export
    assert "other practice" not in page

    with time_machine.travel(datetime(2026, 12, 1, 5, 0, tzinfo=UTC), tick=False):  # Nov 30, 22:00 in Denver
        response = export(client, "smile-dental")
    assert (
        response["Content-Disposition"] == 'attachment; filename="consent-ledger-smile-dental-2026-11-30.csv"'
    )
    header, *rows = rows_of(response)
    assert header == CSV_HEADER
    assert rows == [
        ["smile-dental", "sms", PATIENT, "revocation", "sms_keyword", "2026-11-24T17:00:00+00:00",
         "2026-11-24T10:00:00-07:00", "America/Denver", "patient", "STOP", "STOP", "", str(ids[0])],
        ["smile-dental", "sms", "+18015550111", "grant", "quick_add", "2026-11-25T03:30:00+00:00",
         "2026-11-24T20:30:00-07:00", "America/Denver", "Bea Moss", "", "Consent confirmed by phone", "G1",
         str(ids[1])],
        ["smile-dental", "email", "ana@example.com", "revocation", "staff", "2026-11-26T15:00:00+00:00",
         "2026-11-26T08:00:00-07:00", "America/Denver", "Bea Moss", "",
         '\'=HYPERLINK("http://x.example","stop")', "", str(ids[2])],
        ["smile-dental", "sms", PATIENT, "grant", "pms_flag", "2026-11-27T12:00:00+00:00",
         "2026-11-27T05:00:00-07:00", "America/Denver", "PMS", "", "PMS sms_consent: unknown → yes (feed import)",
         "G1", str(ids[3])],
    ]  # fmt: skip
    assert OptOutEvent.objects.get(pk=ids[2]).text.startswith("=HYPERLINK")  # the proof itself is unchanged
    # T5: the download of the proof is itself on the audit trail, with who and which organization.
    [audit] = AuditEvent.objects.filter(action="consent.ledger_exported")
    assert (audit.organization, audit.actor, audit.object_id) == (org, manager, str(org.pk))


def test_the_export_is_for_billing_managers_of_that_organization_only(client, org, other, manager):
    opt_out_set(organization=other, channel=Channel.SMS, address=PATIENT, active=True,
                source=OptOutSource.STAFF, text="other practice", at=T0)  # fmt: skip
    client.force_login(manager)
    assert export(client, "bright-smiles").status_code == 404  # front desk there (T1, T2)
    assert export(client, "no-such-practice").status_code == 404
    assert not AuditEvent.objects.filter(
        action="consent.ledger_exported"
    ).exists()  # refused: nothing exported

    desk = UserFactory.create(username="desk", is_staff=True)
    MembershipFactory.create(organization=org, user=desk, role=Role.FRONT_DESK)
    client.force_login(desk)
    assert export(client, "smile-dental").status_code == 403
    assert client.get(reverse("admin:notifications_optoutevent_changelist")).status_code == 403


def test_nobody_adds_changes_or_deletes_a_ledger_row_in_the_admin(client, org, manager, admin_user):
    row = opt_out_set(organization=org, channel=Channel.SMS, address=PATIENT, active=True,
                      source=OptOutSource.STAFF, text="by phone", at=T0).events.get()  # fmt: skip
    for user in (manager, admin_user):
        client.force_login(user)
        assert client.get(reverse("admin:notifications_optoutevent_add")).status_code == 403
        change = reverse("admin:notifications_optoutevent_change", args=[row.pk])
        assert client.get(change).status_code == 200  # shown, read-only
        client.post(change, {"text": "rewritten"})
        assert (
            client.post(reverse("admin:notifications_optoutevent_delete", args=[row.pk])).status_code == 403
        )
    row.refresh_from_db()
    assert row.text == "by phone"


def test_the_review_items_are_read_only_and_scoped_to_the_organization(client, org, other, admin_user):
    mine = InboundReview.objects.create(organization=org, number=PATIENT, text="who is this?", received_at=T0)
    theirs = InboundReview.objects.create(
        organization=other, number=PATIENT, text="quien es?", received_at=T0
    )
    desk = UserFactory.create(username="desk", is_staff=True)
    MembershipFactory.create(organization=org, user=desk, role=Role.FRONT_DESK)
    client.force_login(desk)

    mine.patients.set([GuarantorFactory.create(organization=org, first_name="Ana", last_name="Diaz")])
    listing = client.get(reverse("admin:notifications_inboundreview_changelist"))
    assert listing.status_code == 200
    assert "who is this?" in listing.content.decode()
    assert "quien es?" not in listing.content.decode()
    assert "(•••) •••-0100" in listing.content.decode()
    assert PATIENT not in listing.content.decode()  # the last four digits only, as on the queue (T4)
    found = client.get(reverse("admin:notifications_inboundreview_changelist"), {"q": PATIENT})
    assert "who is this?" in found.content.decode()
    assert (
        client.get(reverse("admin:notifications_inboundreview_change", args=[theirs.pk])).status_code == 404
    )
    change = reverse("admin:notifications_inboundreview_change", args=[mine.pk])
    detail = client.get(change)
    assert detail.status_code == 200
    assert "Ana Diaz" in detail.content.decode()
    client.post(change, {"state": ReviewState.DISMISSED, "text": "changed"})
    mine.refresh_from_db()
    assert (mine.state, mine.text) == (ReviewState.OPEN, "who is this?")
    assert client.get(reverse("admin:notifications_inboundreview_add")).status_code == 403
    client.force_login(admin_user)
    assert client.post(reverse("admin:notifications_inboundreview_delete", args=[mine.pk])).status_code == 403
    assert InboundReview.objects.filter(pk=mine.pk).exists()
