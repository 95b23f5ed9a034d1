"""Message templates (N4): validation, rendering, SMS length, system defaults and the template admin (T1, T2, T5)."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from django.urls import reverse

from notifications.models import ELECTRONIC_ONLY_KINDS, Channel, Kind, Template
from notifications.templating import (
    NO_PHONE,
    OPT_OUT_HINT,
    TemplateError,
    format_amount,
    format_due_date,
    message_values,
    render,
    render_message,
    sample_values,
    sms_segments,
    template_for,
    template_preview,
    validate,
)
from practices.models import AuditEvent, Role
from tests.factories import MembershipFactory, OrganizationFactory

SMS_OK = "{{ practice.name }}: Hi {{ patient.first_name }}, you owe {{ amount_due }}. {{ pay_url }} Reply STOP to opt out"


def system_defaults() -> list[Template]:
    return list(Template.objects.filter(organization__isnull=True))


# --- system defaults (data migration) ----------------------------------------------------------------------


@pytest.mark.django_db
def test_every_kind_and_channel_has_a_system_default():
    pairs = sorted((t.kind, t.channel) for t in system_defaults())
    # A receipt (H4) is written by payments, not from a template.
    kinds = [kind for kind in Kind.values if kind != Kind.RECEIPT and kind not in ELECTRONIC_ONLY_KINDS]
    expected = [*itertools.product(kinds, Channel.values),
                *itertools.product(ELECTRONIC_ONLY_KINDS, [Channel.SMS, Channel.EMAIL])]  # fmt: skip
    assert pairs == sorted(expected)


@pytest.mark.django_db
def test_every_system_default_is_valid_and_each_sms_fits_two_segments_with_the_hint():
    values = sample_values()
    for template in system_defaults():
        validate(channel=template.channel, body=template.body, subject=template.subject)
        subject, body = render_message(template=template, values=values)
        assert "{{" not in body and "}}" not in body and "{{" not in subject
        if template.channel == Channel.SMS:
            assert OPT_OUT_HINT in body
            encoding, _length, segments = sms_segments(body)
            assert (encoding, segments <= 2) == ("GSM-7", True), (template.kind, body)
            assert "Diaz" not in body
        elif template.channel == Channel.EMAIL:
            assert subject
        else:
            assert not body.startswith("Dear"), "the letter renderer prints the greeting"


# --- validate ---------------------------------------------------------------------------------------------


def test_a_valid_sms_passes():
    validate(channel=Channel.SMS, body=SMS_OK)
    validate(channel=Channel.SMS, body="{{pay_url}} reply stop to end")


def test_an_unknown_placeholder_is_rejected_and_named():
    with pytest.raises(TemplateError, match=r"patient\.ssn"):
        validate(channel=Channel.PAPER, body="Hello {{ patient.ssn }} and {{ amount_due }}")


def test_an_unknown_placeholder_in_the_subject_is_rejected_on_the_subject():
    with pytest.raises(TemplateError, match="balance") as info:
        validate(channel=Channel.EMAIL, body="{{ amount_due }}", subject="Your {{ balance }}")
    assert info.value.field == "subject"


@pytest.mark.parametrize(
    "body",
    [
        "{% if amount_due %}You owe {{ amount_due }}{% endif %}",
        "{# comment #} {{ amount_due }}",
        "You owe {{ amount_due|upper }}",
        "You owe {{ amount_due | default:'0' }}",
        "Hi {{ patient.first_name.upper }}",
        "Hi {{ }}",
        "Hi {{ patient.first_name }",
        "Hi patient.first_name }}",
    ],
)
def test_template_syntax_beyond_plain_placeholders_is_rejected(body):
    with pytest.raises(TemplateError):
        validate(channel=Channel.EMAIL, body=body, subject="Your bill")


def test_sms_refuses_the_last_name_as_unnecessary_phi():
    with pytest.raises(TemplateError, match="minimum necessary"):
        validate(
            channel=Channel.SMS, body="Hi {{ patient.last_name }}, pay {{ pay_url }}. Reply STOP to opt out"
        )
    validate(channel=Channel.EMAIL, body="Dear {{ patient.last_name }}", subject="Your bill")


def test_sms_refuses_phi_that_is_not_a_placeholder_with_the_phi_reason():
    with pytest.raises(TemplateError, match="minimum necessary"):
        validate(channel=Channel.SMS, body="Born {{ patient.date_of_birth }}. Reply STOP to opt out")


def test_sms_without_an_opt_out_hint_is_refused():
    with pytest.raises(TemplateError, match="opt out"):
        validate(channel=Channel.SMS, body="Hi {{ patient.first_name }}, pay at {{ pay_url }}")
    with pytest.raises(TemplateError):
        validate(channel=Channel.SMS, body="Pay now or we stopped waiting {{ pay_url }}")


def test_email_without_a_subject_is_refused():
    with pytest.raises(TemplateError, match="subject") as info:
        validate(channel=Channel.EMAIL, body="Hi {{ patient.first_name }}", subject="  ")
    assert info.value.field == "subject"


def test_an_empty_body_is_refused():
    with pytest.raises(TemplateError, match="empty"):
        validate(channel=Channel.PAPER, body=" \n ")


# --- render -------------------------------------------------------------------------------------------------


def test_render_fills_placeholders_with_or_without_spaces_and_blanks_missing_values():
    body = "Hi {{patient.first_name}}, {{ amount_due }} due {{  due_date  }}.{{ pay_url }}\r\nBye"
    rendered = render(
        body=body, values={"patient.first_name": "Ana", "amount_due": "$5.00", "due_date": "May 1, 2026"}
    )
    assert rendered == "Hi Ana, $5.00 due May 1, 2026.\nBye"


def test_values_are_inserted_as_plain_text_not_evaluated():
    assert (
        render(body="{{ practice.name }}", values={"practice.name": "{{ pay_url }} & <b>"})
        == "{{ pay_url }} & <b>"
    )


def test_render_message_makes_a_one_line_subject():
    template = Template(channel=Channel.EMAIL, subject="Hi\n{{ practice.name }}", body="{{ amount_due }}")
    assert render_message(template=template, values={"practice.name": "Smile", "amount_due": "$1.00"}) == (
        "Hi Smile",
        "$1.00",
    )


def test_value_formatting_helpers():
    from datetime import date
    from decimal import Decimal

    assert format_amount(Decimal("1234.5")) == "$1,234.50"
    assert format_amount(Decimal("-5")) == "-$5.00"
    assert format_due_date(date(2026, 12, 10)) == "Dec 10, 2026"
    assert format_due_date(None) == "upon receipt"


# --- SMS length ---------------------------------------------------------------------------------------------


def test_sms_segments_for_gsm_7():
    assert sms_segments("a" * 160) == ("GSM-7", 160, 1)
    assert sms_segments("a" * 161) == ("GSM-7", 161, 2)
    assert sms_segments("a" * 306) == ("GSM-7", 306, 2)
    assert sms_segments("a" * 307) == ("GSM-7", 307, 3)


def test_gsm_7_extension_characters_count_two():
    assert sms_segments("€") == ("GSM-7", 2, 1)
    assert sms_segments("{}[]~\\|^") == ("GSM-7", 16, 1)
    assert sms_segments("a" * 159 + "€") == ("GSM-7", 161, 2)


def test_a_character_outside_gsm_7_switches_to_ucs_2():
    assert sms_segments("Łukasz") == ("UCS-2", 6, 1)
    assert sms_segments("Ł" * 70) == ("UCS-2", 70, 1)
    assert sms_segments("Ł" * 71) == ("UCS-2", 71, 2)
    assert sms_segments("Hi 🙂") == ("UCS-2", 5, 1)


# --- template_for ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_template_for_uses_the_system_default_unless_a_template_is_chosen():
    org, other = OrganizationFactory.create(), OrganizationFactory.create()
    default = Template.objects.get(organization=None, kind=Kind.DUE, channel=Channel.SMS)
    own = Template.objects.create(
        organization=org, kind=Kind.DUE, channel=Channel.SMS, name="Ours", body=SMS_OK
    )
    foreign = Template.objects.create(
        organization=other, kind=Kind.DUE, channel=Channel.SMS, name="X", body=SMS_OK
    )
    assert template_for(organization=org, kind=Kind.DUE, channel=Channel.SMS) == default
    assert template_for(organization=org, kind=Kind.DUE, channel=Channel.SMS, template_id=own.pk) == own
    assert (
        template_for(organization=org, kind=Kind.DUE, channel=Channel.SMS, template_id=default.pk) == default
    )
    with pytest.raises(LookupError):
        template_for(organization=org, kind=Kind.DUE, channel=Channel.SMS, template_id=foreign.pk)
    with pytest.raises(LookupError):
        template_for(organization=org, kind=Kind.DUE, channel=Channel.EMAIL, template_id=own.pk)


@pytest.mark.django_db
def test_sample_values_use_the_organizations_name_and_phone():
    org = OrganizationFactory.create(name="Bright Smiles", phone="(303) 555-0199")
    values = sample_values(org)
    assert (values["practice.name"], values["practice.phone"]) == ("Bright Smiles", "(303) 555-0199")
    assert sample_values()["practice.name"] == "Smile Dental"
    template = Template(channel=Channel.SMS, body=SMS_OK)
    preview = template_preview(template=template, organization=org)
    assert preview.body.startswith("Bright Smiles: Hi Ana, you owe $120.00.")
    assert (preview.encoding, preview.segments, preview.error) == ("GSM-7", 1, "")


# --- admin ----------------------------------------------------------------------------------------------------


def member(role: str = Role.BILLING_MANAGER, **org_kwargs):
    membership = MembershipFactory.create(organization=OrganizationFactory.create(**org_kwargs), role=role)
    return membership.user, membership.organization


def add_url() -> str:
    return reverse("admin:notifications_template_add")


def form_data(org, **overrides) -> dict[str, object]:
    data = {"organization": org.pk if org else "", "kind": Kind.DUE, "channel": Channel.SMS, "name": "Friendly due",
            "subject": "", "body": SMS_OK}  # fmt: skip
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_the_preview_page_renders_sample_values_for_a_billing_manager(client):
    user, org = member(name="Bright Smiles")
    template = Template.objects.create(
        organization=org, kind=Kind.DUE, channel=Channel.SMS, name="T", body=SMS_OK
    )
    client.force_login(user)
    url = reverse("admin:notifications_template_preview", args=[template.pk])
    assert url.endswith(f"/{template.pk}/preview/")
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Bright Smiles: Hi Ana, you owe $120.00." in text
    assert "GSM-7, 1 segment" in text


@pytest.mark.django_db
def test_the_preview_of_a_system_default_email_shows_its_subject(client):
    user, _org = member(name="Bright Smiles")
    default = Template.objects.get(organization=None, kind=Kind.STATEMENT, channel=Channel.EMAIL)
    client.force_login(user)
    text = client.get(reverse("admin:notifications_template_preview", args=[default.pk])).content.decode()
    assert "Subject:" in text
    assert "Your statement from Bright Smiles is ready" in text
    assert "$120.00" in text


# Issue 12: previews of the system defaults said "Smile Dental" whoever looked.


@pytest.mark.django_db
def test_a_system_default_is_previewed_with_the_users_practice(client):
    user, org = member(name="Bright Smiles", phone="+13035550199")
    default = Template.objects.get(organization=None, kind=Kind.PAST_DUE, channel=Channel.EMAIL)
    assert "{{ practice.phone }}" in default.body and "{{ practice.name }}" in default.body
    client.force_login(user)
    page = client.get(reverse("admin:notifications_template_preview", args=[default.pk]))
    text = page.content.decode()
    assert "Smile Dental" not in text
    assert "Bright Smiles" in text and "(303) 555-0199" in text
    assert "With Bright Smiles’s own name and phone" in text
    assert page.context["preview_organization"] == org
    # The change page's preview too, without an inline style (CSP).
    change = client.get(reverse("admin:notifications_template_change", args=[default.pk])).content.decode()
    assert "Preview (saved version) for Bright Smiles" in change
    assert "(303) 555-0199" in change and "Smile Dental" not in change
    assert 'style="' not in change.split('id="content-main"')[1]


@pytest.mark.django_db
def test_the_preview_values_come_from_message_values():
    org = OrganizationFactory.create(name="Bright Smiles", phone="+13035550199", timezone="America/Denver")
    values = sample_values(org)
    built = message_values(first_name="Ana", last_name="Diaz", organization=org, amount_due=Decimal("120.00"),
                           pay_ref="", due_date=None, statement_date=None)  # fmt: skip
    assert {
        k: values[k] for k in ("practice.name", "practice.phone", "patient.first_name", "amount_due")
    } == {k: built[k] for k in ("practice.name", "practice.phone", "patient.first_name", "amount_due")}
    assert values["practice.phone"] == "(303) 555-0199"
    assert values["pay_url"].startswith("https://") and "{{" not in values["pay_url"]
    no_phone = sample_values(OrganizationFactory.create(name="Quiet Dental", phone=""))
    assert no_phone["practice.phone"] == NO_PHONE  # what its patients read, not a sample number


@pytest.mark.django_db
def test_a_user_of_several_practices_chooses_whose_values_the_preview_shows(client):
    user, first = member(name="Alpine Dental")
    second = OrganizationFactory.create(name="Bright Smiles")
    MembershipFactory.create(user=user, organization=second, role=Role.BILLING_MANAGER)
    front_desk_only = OrganizationFactory.create(name="Canyon Dental")
    MembershipFactory.create(user=user, organization=front_desk_only, role=Role.FRONT_DESK)
    foreign = OrganizationFactory.create(name="Elsewhere Dental")
    default = Template.objects.get(organization=None, kind=Kind.DUE, channel=Channel.SMS)
    url = reverse("admin:notifications_template_preview", args=[default.pk])
    client.force_login(user)
    page = client.get(url)
    assert page.context["preview_organization"] == first
    assert page.context["preview_choices"] == [first, second]
    assert '<select id="preview-organization" name="organization">' in page.content.decode()
    assert client.get(url, {"organization": second.pk}).context["preview_organization"] == second
    for refused in (front_desk_only, foreign):
        response = client.get(url, {"organization": refused.pk})
        assert response.context["preview_organization"] == first
        assert refused.name not in response.content.decode()


@pytest.mark.django_db
def test_an_organizations_template_is_previewed_with_its_own_practice(admin_client):
    OrganizationFactory.create(name="Alpine Dental")
    org = OrganizationFactory.create(name="Bright Smiles")
    template = Template.objects.create(
        organization=org, kind=Kind.DUE, channel=Channel.SMS, name="T", body=SMS_OK
    )
    page = admin_client.get(reverse("admin:notifications_template_preview", args=[template.pk]))
    assert page.context["preview_organization"] == org
    assert "Bright Smiles: Hi Ana" in page.content.decode()


@pytest.mark.django_db
def test_another_organizations_template_answers_404(client):
    user, _org = member()
    _other_user, other = member()
    foreign = Template.objects.create(
        organization=other, kind=Kind.DUE, channel=Channel.SMS, name="T", body=SMS_OK
    )
    client.force_login(user)
    assert client.get(reverse("admin:notifications_template_preview", args=[foreign.pk])).status_code == 404
    assert client.get(reverse("admin:notifications_template_change", args=[foreign.pk])).status_code == 404
    listing = client.get(reverse("admin:notifications_template_changelist")).content.decode()
    assert "System default" in listing
    assert f"/{foreign.pk}/change/" not in listing


@pytest.mark.django_db
def test_a_front_desk_user_is_refused_the_template_admin(client):
    user, org = member(role=Role.FRONT_DESK)
    default = Template.objects.get(organization=None, kind=Kind.DUE, channel=Channel.SMS)
    client.force_login(user)
    assert client.get(reverse("admin:notifications_template_changelist")).status_code == 403
    assert client.get(reverse("admin:notifications_template_preview", args=[default.pk])).status_code == 403
    assert client.post(add_url(), form_data(org)).status_code == 403
    assert not Template.objects.filter(organization=org).exists()


@pytest.mark.django_db
def test_a_billing_manager_can_view_but_not_change_a_system_default(client):
    user, _org = member()
    default = Template.objects.get(organization=None, kind=Kind.DUE, channel=Channel.SMS)
    client.force_login(user)
    url = reverse("admin:notifications_template_change", args=[default.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    data = form_data(None, body="Changed. Reply STOP to opt out")
    assert client.post(url, data).status_code == 403
    delete = reverse("admin:notifications_template_delete", args=[default.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    default.refresh_from_db()
    assert default.body != data["body"]


@pytest.mark.django_db
def test_a_billing_manager_adds_an_organization_template_and_it_is_audited(client):
    user, org = member()
    client.force_login(user)
    response = client.post(add_url(), form_data(org))
    assert response.status_code == 302
    template = Template.objects.get(organization=org)
    assert (template.kind, template.channel, template.body) == (Kind.DUE, Channel.SMS, SMS_OK)
    event = AuditEvent.objects.get(action="admin.add", object_id=str(template.pk))
    assert (event.organization, event.actor, event.object_type) == (org, user, "notifications.Template")

    change = reverse("admin:notifications_template_change", args=[template.pk])
    new_body = "{{ pay_url }} Reply STOP to opt out"
    assert client.post(change, form_data(org, body=new_body)).status_code == 302
    event = AuditEvent.objects.get(action="admin.change", object_id=str(template.pk))
    assert event.changes["body"] == [SMS_OK, new_body]
    page = client.get(change).content.decode()
    assert "GSM-7" in page and "segment" in page
    assert reverse("admin:notifications_template_preview", args=[template.pk]) in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"body": "Hi {{ patient.nickname }}. Reply STOP to opt out"}, "patient.nickname"),
        ({"body": "{% if amount_due %}Pay{% endif %} Reply STOP to opt out"}, "not supported"),
        ({"body": "Pay {{ amount_due|upper }}. Reply STOP to opt out"}, "Filters are not supported"),
        ({"body": "Hi {{ patient.last_name }}. Reply STOP to opt out"}, "minimum necessary"),
        ({"body": "Hi {{ patient.first_name }}, pay {{ pay_url }}"}, "opt out"),
        ({"channel": Channel.EMAIL, "body": "Hi {{ patient.first_name }}"}, "needs a subject"),
    ],
)
def test_an_invalid_template_is_refused_by_the_admin_and_nothing_is_saved(client, overrides, message):
    user, org = member()
    client.force_login(user)
    response = client.post(add_url(), form_data(org, **overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Template.objects.filter(organization=org).exists()
    assert not AuditEvent.objects.filter(action="admin.add").exists()


@pytest.mark.django_db
def test_a_billing_manager_cannot_add_a_system_default_or_a_template_for_an_organization_without_the_role(
    client,
):
    user, _org = member()
    front_desk_org = MembershipFactory.create(user=user, role=Role.FRONT_DESK).organization
    client.force_login(user)
    before = Template.objects.count()
    system = client.post(add_url(), form_data(None))
    assert (system.status_code, "This field is required" in system.content.decode()) == (200, True)
    foreign = client.post(add_url(), form_data(front_desk_org))
    assert (foreign.status_code, "Select a valid choice" in foreign.content.decode()) == (200, True)
    assert Template.objects.count() == before
