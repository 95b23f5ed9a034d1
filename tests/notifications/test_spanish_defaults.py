"""§13.2 ``language``: templates per language with an English fallback, and the Spanish system defaults.

The SMS lengths are measured as a carrier counts them (``sms_segments``: GSM 03.38, else UCS-2 in UTF-16
units): GSM-7 160 in one segment and 153 per part, UCS-2 70 and 67. á, í, ó, ú are outside GSM-7 (é, ñ, ü,
¿, ¡ are in it), so one of them in a Spanish text would make it UCS-2, where the practice's name, the link
and the opt-out hint alone fill most of two segments."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from notifications.letters import Letter, PostalAddress, Practice, render
from notifications.models import ELECTRONIC_ONLY_KINDS, Channel, Kind, Template, TemplateTranslation
from notifications.templating import (
    format_due_date,
    message_values,
    render_message,
    sample_values,
    sms_segments,
    template_for,
    validate,
)
from practices.models import Organization, Role
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

# A long practice name, a five-figure balance, a long first name and a long public base URL: the longest a
# typical text gets.
LONG_PRACTICE = Organization(name="Wasatch Family Dental Group of Utah", phone="+18015550100")
LONG_NAME = "Maximiliano"
LONG_AMOUNT = Decimal("12345.67")
LONG_PAY_URL = "https://payments.wasatchfamilydental.example.com/p/k3Jx9QmT2vLw8RzA5nYc0g"


def spanish() -> list[TemplateTranslation]:
    return list(
        TemplateTranslation.objects.filter(organization=None, language="es").select_related("template")
    )


def test_every_kind_and_channel_has_a_spanish_system_default():
    # A receipt (H4) is written by payments, not from a template; plan notices (H5) go by text and email.
    kinds = [kind for kind in Kind.values if kind != Kind.RECEIPT and kind not in ELECTRONIC_ONLY_KINDS]
    assert sorted((t.template.kind, t.template.channel) for t in spanish()) == sorted(
        [*itertools.product(kinds, Channel.values),
         *itertools.product(ELECTRONIC_ONLY_KINDS, [Channel.SMS, Channel.EMAIL])]
    )  # fmt: skip
    assert all(t.template.organization_id is None and t.template.language == "en" for t in spanish())


def test_every_spanish_default_is_valid_and_renders_every_placeholder():
    values = sample_values(language="es")
    for translation in spanish():
        template = translation.as_template()
        validate(channel=template.channel, body=template.body, subject=template.subject)
        subject, body = render_message(template=template, values=values)
        assert "{{" not in body and "{{" not in subject, (template.kind, template.channel)
        if template.channel == Channel.EMAIL:
            assert subject and body.startswith("Hola Ana:")


def test_each_spanish_text_fits_two_segments_measured_as_carriers_count_them():
    typical = sample_values(language="es")
    longest = message_values(
        first_name=LONG_NAME, last_name="Ortega", organization=LONG_PRACTICE, amount_due=LONG_AMOUNT,
        pay_ref="", due_date=date(2026, 9, 30), statement_date=None, language="es",
    )  # fmt: skip
    longest["pay_url"] = LONG_PAY_URL
    for translation in spanish():
        if translation.template.channel != Channel.SMS:
            continue
        for values in (typical, longest):
            _subject, body = render_message(template=translation.as_template(), values=values)
            encoding, length, segments = sms_segments(body)
            assert "STOP" in body
            # Worded without á, í, ó and ú, the texts stay GSM-7 ...
            assert encoding == "GSM-7", (translation.template.kind, body)
            # ... and within two segments (306 septets) even at their longest.
            assert segments <= 2, (translation.template.kind, length, body)


def test_an_accented_letter_would_make_a_text_ucs2_and_cost_a_segment():
    """What the wording avoids: 'está' instead of 'es' turns the statement text into UCS-2, three segments."""
    statement = next(t for t in spanish() if (t.template.kind, t.template.channel) == ("statement", "sms"))
    _subject, body = render_message(template=statement.as_template(), values=sample_values(language="es"))
    assert sms_segments(body)[2] <= 2
    accented = body.replace("su estado de cuenta es de", "su estado de cuenta está listo: son")
    assert sms_segments(accented)[0] == "UCS-2"
    assert sms_segments(accented)[2] == 3


def test_every_spanish_letter_fits_its_page():
    values = message_values(
        first_name=LONG_NAME, last_name="Ortega", organization=LONG_PRACTICE, amount_due=LONG_AMOUNT,
        pay_ref="", due_date=date(2026, 9, 30), statement_date=date(2026, 9, 1), language="es",
    )  # fmt: skip
    address = PostalAddress("Maximiliano Ortega", "1 Main St", "", "Salt Lake City", "UT", "84101")
    practice = Practice(name=LONG_PRACTICE.name, phone="(801) 555-0100", return_address=address)
    letters = [
        Letter(reference=f"A-{n}", practice=practice, recipient=address, greeting_name="Maximiliano",
               kind=t.template.kind, body=render_message(template=t.as_template(), values=values)[1],
               amount_due=LONG_AMOUNT, aging={}, due_date=date(2026, 9, 30), pay_url=LONG_PAY_URL,
               statement_date=date(2026, 9, 1), mailed_on=date(2026, 9, 2), language="es")
        for n, t in enumerate(t for t in spanish() if t.template.channel == Channel.PAPER)
    ]  # fmt: skip
    assert render(letters).startswith(b"%PDF-")  # LetterTooLong otherwise


def test_spanish_values_read_as_spanish():
    assert format_due_date(date(2026, 12, 10), language="es") == "el 10 dic. 2026"
    assert format_due_date(None, language="es") == "al recibirlo"
    values = message_values(
        first_name="Guadalupe", last_name="Diaz", organization=Organization(name="Smile Dental", phone=""),
        amount_due=Decimal("1234.5"), pay_ref="", due_date=date(2026, 9, 1), statement_date=None, language="es",
        preferred_name="Lupita",
    )  # fmt: skip
    assert (values["patient.first_name"], values["practice.phone"], values["amount_due"], values["due_date"]) == (
        "Lupita", "la oficina", "$1,234.50", "el 1 sept. 2026",
    )  # fmt: skip


# --- which template goes ----------------------------------------------------------------------------------


def test_template_for_takes_the_translation_for_the_language_and_english_otherwise():
    org = OrganizationFactory.create()
    english = template_for(organization=org, kind=Kind.DUE, channel=Channel.SMS)
    spanish_due = template_for(organization=org, kind=Kind.DUE, channel=Channel.SMS, language="es")
    assert (english.language, spanish_due.language, spanish_due.pk) == ("en", "es", english.pk)
    assert spanish_due.body.startswith("{{ practice.name }}: Hola")
    for language in ("", "en", "vi"):
        assert template_for(organization=org, kind=Kind.DUE, channel=Channel.SMS, language=language).body == (
            english.body
        )


def test_an_organizations_own_translation_comes_before_the_systems_and_stays_its_own():
    org, other = OrganizationFactory.create(), OrganizationFactory.create()
    default = Template.objects.get(organization=None, kind=Kind.DUE, channel=Channel.SMS)
    own = "{{ practice.name }}: {{ patient.first_name }}, su pago vence {{ due_date }}. {{ pay_url }} Responda STOP"
    TemplateTranslation.objects.create(template=default, organization=org, language="es", body=own)
    assert template_for(organization=org, kind=Kind.DUE, channel=Channel.SMS, language="es").body == own
    assert template_for(organization=other, kind=Kind.DUE, channel=Channel.SMS, language="es").body != own


def test_a_step_template_of_the_organization_is_translated_or_sent_as_written():
    org = OrganizationFactory.create()
    chosen = Template.objects.create(
        organization=org, kind=Kind.DUE, channel=Channel.SMS, name="Friendly due",
        body="{{ practice.name }}: {{ patient.first_name }}, {{ amount_due }} due. {{ pay_url }} Reply STOP",
    )  # fmt: skip
    assert template_for(organization=org, kind=Kind.DUE, channel=Channel.SMS, template_id=chosen.pk,
                        language="es").body == chosen.body  # fmt: skip
    TemplateTranslation.objects.create(
        template=chosen, organization=org, language="es",
        body="{{ practice.name }}: {{ patient.first_name }}, vence {{ amount_due }}. {{ pay_url }} Responda STOP",
    )  # fmt: skip
    assert template_for(organization=org, kind=Kind.DUE, channel=Channel.SMS, template_id=chosen.pk,
                        language="es").body.startswith("{{ practice.name }}: {{ patient.first_name }}, vence")  # fmt: skip


# --- admin ------------------------------------------------------------------------------------------------


def test_a_billing_manager_translates_a_system_default_for_the_practice_and_it_is_checked(client):
    membership = MembershipFactory.create(organization=OrganizationFactory.create(name="Bright Smiles"),
                                          role=Role.BILLING_MANAGER)  # fmt: skip
    client.force_login(membership.user)
    default = Template.objects.get(organization=None, kind=Kind.DUE, channel=Channel.SMS)
    url = reverse("admin:notifications_templatetranslation_add")
    data: dict[str, object] = {
        "template": default.pk, "organization": membership.organization.pk, "language": "ES", "subject": "",
        "body": "{{ practice.name }}: su pago vence {{ due_date }}. {{ pay_url }}",
    }  # fmt: skip
    refused = client.post(url, data)
    assert refused.status_code == 200
    assert "A text message must tell the patient how to opt out" in refused.content.decode()
    data["body"] = f"{data['body']} Responda STOP para cancelar"
    assert client.post(url, data).status_code == 302
    saved = TemplateTranslation.objects.get(organization=membership.organization)
    assert (saved.template, saved.language) == (default, "es")
    system = TemplateTranslation.objects.get(organization=None, template=default, language="es")
    change = client.get(reverse("admin:notifications_templatetranslation_change", args=[system.pk]))
    assert change.status_code == 200  # shown, read-only
    assert (
        client.post(
            reverse("admin:notifications_templatetranslation_change", args=[system.pk]), data
        ).status_code
        == 403
    )
    page = client.get(
        reverse("admin:notifications_templatetranslation_change", args=[saved.pk])
    ).content.decode()
    assert "Bright Smiles: su pago vence el " in page and "GSM-7, 1 segment" in page
