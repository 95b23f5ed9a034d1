"""SPEC §13.2 feed additions, from the feed to what the patient receives: a feed is imported, the engine runs
(or a payment request is sent), the outbox sends through the real channels, and the test reads what reached
the fake Twilio (its documented Messages API, tests/fakes/twilio_server.py), the ESP (anymail's test backend)
and the letter batch's PDF.

- ``sent_by_pms``: Open Dental's statement send mode (C2) tells us the PMS already mailed or emailed it.
- ``sms_consent`` with the organization's ``require_sms_consent`` (§10 compliance key).
- ``preferred_name`` (greetings), ``language`` (Spanish system defaults, English fallback), ``care_of``
  (letters), ``deceased``."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from pypdf import PdfReader

from dunning.engine import run_dunning
from dunning.models import DunningDecision, DunningSettings, Preset
from notifications.letters.batch import letter_batch_render
from notifications.models import Channel, Message, NotificationSettings, Reason, State
from notifications.providers.twilio import reset_client
from notifications.resend import message_resend
from payments.campaigns import send_request
from practices.importer import feed_import
from practices.models import Bill, BillState, Organization
from tests.factories import OrganizationFactory, UserFactory, feed_patient, feed_statement
from tests.fakes.twilio_server import FAKE_FROM_NUMBER, FakeTwilio

pytestmark = pytest.mark.django_db

IMPORTED = "2026-11-20T13:00:00Z"
STATEMENT_DAY = date(2026, 11, 20)
DAYTIME = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)  # 11:00 in Denver, a Friday


@pytest.fixture
def providers(settings) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = fake.account_sid, fake.auth_token
        settings.TWILIO_API_BASE_URL, settings.TWILIO_ENABLED = fake.base_url, True
        settings.TWILIO_MESSAGING_SERVICE_SID, settings.TWILIO_FROM_NUMBER = "", FAKE_FROM_NUMBER
        settings.EMAIL_BACKEND, settings.EMAIL_ENABLED = "anymail.backends.test.EmailBackend", True
        reset_client()
        yield fake
        reset_client()


@pytest.fixture
def org() -> Organization:
    org = OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver",
                                     phone="+18015550199")  # fmt: skip
    DunningSettings.objects.update_or_create(
        organization=org, defaults={"preset": Preset.objects.get(slug="standard-30")}
    )
    return org


def import_feed(feed_bytes: Any, patients: list[dict[str, Any]], statements: list[dict[str, Any]]) -> None:
    with time_machine.travel(DAYTIME, tick=False):
        summary = feed_import(raw=feed_bytes(generated_at=IMPORTED, patients=patients, statements=statements))
    assert summary.errors == []


def run_and_send(org: Organization) -> list[dict[str, Any]]:
    """The age-0 run, then the outbox tick; the decisions of the run."""
    with time_machine.travel(DAYTIME, tick=False):
        decisions = [d.as_json() for d in run_dunning(organization=org, on=STATEMENT_DAY, now=DAYTIME)]
        out = io.StringIO()
        call_command("send_due", "--org", org.slug, "--json", stdout=out)
    return decisions


def patient(pid: str = "P1", **fields: Any) -> dict[str, Any]:
    return feed_patient(pid, mobile_phone="+18015550100", email=f"{pid.lower()}@example.com", **fields)


def statement(**fields: Any) -> dict[str, Any]:
    return feed_statement("S-1", "P1", statement_date="2026-11-20", due_date="2026-12-10", amount_due="120.00",
                          dunning_status="", **fields)  # fmt: skip


def age_zero(decisions: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {d["channel"]: (d["action"], d["reason"]) for d in decisions if d["step_age_days"] == 0}


# --- sent_by_pms ----------------------------------------------------------------------------------------


def test_a_statement_the_pms_mailed_is_not_mailed_again_and_the_electronic_ones_go(
    org, feed_bytes, providers
):
    import_feed(feed_bytes, [patient()], [statement(sent_by_pms="mail")])
    decisions = run_and_send(org)
    assert age_zero(decisions) == {
        "email": ("send", ""), "paper": ("skip", "sent_by_pms"), "sms": ("send", ""),
    }  # fmt: skip
    assert not Message.objects.filter(channel=Channel.PAPER).exists()
    assert [m["To"] for m in providers.accepted()] == ["+18015550100"]
    assert [m.to for m in mail.outbox] == [["p1@example.com"]]


def test_a_statement_the_pms_emailed_is_not_emailed_again(org, feed_bytes, providers):
    import_feed(feed_bytes, [patient()], [statement(sent_by_pms="email")])
    decisions = run_and_send(org)
    assert age_zero(decisions)["email"] == ("skip", "sent_by_pms")
    assert mail.outbox == []
    assert Message.objects.filter(channel=Channel.PAPER, state=State.PENDING).count() == 1
    assert len(providers.accepted()) == 1


# --- sms_consent and require_sms_consent --------------------------------------------------------------


@pytest.mark.parametrize(("consent", "texted"), [("yes", True), ("unknown", False), ("no", False)])
def test_with_consent_required_only_a_yes_is_texted(org, feed_bytes, providers, consent, texted):
    NotificationSettings.objects.update_or_create(organization=org, defaults={"require_sms_consent": True})
    import_feed(feed_bytes, [patient(sms_consent=consent)], [statement()])
    decisions = run_and_send(org)
    assert age_zero(decisions)["sms"] == (("send", "") if texted else ("skip", "no_sms_consent"))
    assert [m["To"] for m in providers.accepted()] == (["+18015550100"] if texted else [])
    assert len(mail.outbox) == 1  # email is not affected


def test_without_the_setting_consent_unknown_is_texted(org, feed_bytes, providers):
    import_feed(feed_bytes, [patient(sms_consent="unknown")], [statement()])
    run_and_send(org)
    assert [m["To"] for m in providers.accepted()] == ["+18015550100"]


def test_a_resend_to_a_number_staff_recorded_consent_for_goes(org, feed_bytes, providers):
    NotificationSettings.objects.update_or_create(organization=org, defaults={"require_sms_consent": True})
    import_feed(
        feed_bytes, [feed_patient("P1", mobile_phone="", email="", sms_consent="unknown")], [statement()]
    )
    run_and_send(org)
    undeliverable = Message.objects.get(channel=Channel.EMAIL)  # no email on file (U1)
    assert undeliverable.state == State.UNDELIVERED
    with time_machine.travel(DAYTIME, tick=False):
        message_resend(message=undeliverable, user=UserFactory.create(), mobile_number="(801) 555-0177",
                       consented=True, now=DAYTIME)  # fmt: skip
        call_command("send_due", "--org", org.slug, "--json", stdout=io.StringIO())
    assert [m["To"] for m in providers.accepted()] == ["+18015550177"]


# --- preferred_name, language ---------------------------------------------------------------------------


def test_the_greeting_uses_the_preferred_name(org, feed_bytes, providers):
    import_feed(feed_bytes, [patient(first_name="Guadalupe", preferred_name="Lupita")], [statement()])
    run_and_send(org)
    (text,) = providers.accepted()
    assert text["Body"].startswith(
        "Smile Dental: Hi Lupita, your statement is ready: $120.00 due Dec 10, 2026."
    )
    assert mail.outbox[0].body.startswith("Hello Lupita,")


def test_a_business_guarantor_is_greeted_by_its_name(org, feed_bytes, providers):
    import_feed(feed_bytes, [patient(first_name="", last_name="Wasatch Mining Co")], [statement()])
    run_and_send(org)
    assert providers.accepted()[0]["Body"].startswith("Smile Dental: Hi Wasatch Mining Co, ")


def test_a_spanish_speaking_patient_gets_the_spanish_defaults_on_every_channel(org, feed_bytes, providers):
    import_feed(
        feed_bytes,
        [patient(first_name="Guadalupe", preferred_name="Lupita", language="es", care_of="Rosa Ortega")],
        [statement()],
    )
    run_and_send(org)
    (text,) = providers.accepted()
    assert text["Body"].startswith(
        "Smile Dental: Hola Lupita, su estado de cuenta es de $120.00 y vence el 10 dic. 2026. Pague en http"
    )
    assert text["Body"].endswith(" Responda STOP para cancelar")
    (email,) = mail.outbox
    assert email.subject == "Su estado de cuenta de Smile Dental está listo"
    assert email.body.startswith("Hola Lupita:\n\nSu estado de cuenta de Smile Dental está listo.")
    assert "llámenos a (801) 555-0199." in email.body
    # The letter: Spanish body and greeting, the care-of line in the window.
    with time_machine.travel(DAYTIME, tick=False):
        batch = letter_batch_render(organization=org, now=DAYTIME)
    assert batch is not None
    pdf_text = PdfReader(batch.pdf.open("rb")).pages[0].extract_text()
    assert "C/O ROSA ORTEGA" in pdf_text
    assert "Estimado(a) Lupita:" in pdf_text
    assert "Este es su estado de cuenta de Smile Dental." in pdf_text


def test_a_language_without_wording_falls_back_to_english(org, feed_bytes, providers):
    import_feed(feed_bytes, [patient(language="vi")], [statement()])
    run_and_send(org)
    assert providers.accepted()[0]["Body"].startswith("Smile Dental: Hi Ana, your statement is ready")


def test_a_payment_request_is_in_the_patients_language(org, feed_bytes, providers):
    import_feed(feed_bytes, [patient(language="es", last_visit_date="2026-11-18")], [])
    with time_machine.travel(DAYTIME, tick=False):
        send_request(organization=org, guarantor_id="P1", at=DAYTIME)
        call_command("send_due", "--org", org.slug, "--json", stdout=io.StringIO())
    assert providers.accepted()[0]["Body"].startswith("Smile Dental: Hola Ana, tiene un saldo de $100.00.")
    assert mail.outbox[0].subject == "Solicitud de pago de Smile Dental"


# --- deceased -------------------------------------------------------------------------------------------


def test_a_deceased_guarantor_gets_nothing_more_and_every_campaign_closes(org, feed_bytes, providers):
    import_feed(feed_bytes, [patient()], [statement()])
    with time_machine.travel(DAYTIME, tick=False):
        run_dunning(organization=org, on=STATEMENT_DAY, now=DAYTIME)  # messages waiting in the outbox
        feed_import(raw=feed_bytes(generated_at="2026-11-20T17:00:00Z", patients=[patient(deceased=True)],
                                   statements=[statement()]))  # fmt: skip
        out = io.StringIO()
        call_command("send_due", "--org", org.slug, "--json", stdout=out)
    assert Bill.objects.get().state == BillState.CLOSED
    assert providers.accepted() == [] and mail.outbox == []
    assert set(
        Message.objects.filter(channel__in=[Channel.SMS, Channel.EMAIL]).values_list("state", "reason")
    ) == {(State.CANCELLED, Reason.BILL_NOT_ACTIVE)}
    assert json.loads(out.getvalue())["cancelled"] == 2


def test_decisions_name_the_new_reasons_in_the_trail(org, feed_bytes, providers):
    NotificationSettings.objects.update_or_create(organization=org, defaults={"require_sms_consent": True})
    import_feed(feed_bytes, [patient()], [statement(sent_by_pms="mail")])
    run_and_send(org)
    assert set(DunningDecision.objects.filter(action="skip").values_list("channel", "reason")) == {
        ("paper", "sent_by_pms"), ("sms", "no_sms_consent"),
    }  # fmt: skip


def test_require_sms_consent_is_an_org_settings_key(org):
    out = io.StringIO()
    call_command("org_settings", "--org", org.slug, "--set", "require_sms_consent=true", "--json", stdout=out)
    assert json.loads(out.getvalue())["require_sms_consent"] is True
    assert NotificationSettings.objects.get(organization=org).require_sms_consent is True
    lines = io.StringIO()
    call_command("org_settings", "--org", org.slug, stderr=lines, stdout=lines)
    assert "require_sms_consent=true" in lines.getvalue()
