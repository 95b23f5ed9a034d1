"""Organization dunning settings (SPEC §6 S1-S12): the admin (T1, T2, T5) and the org_settings keys (§10)."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils.html import strip_tags

from dunning.models import DunningSettings, Preset, PresetStep
from dunning.selectors import dunning_settings_get
from notifications.models import Template
from practices.models import AuditEvent, Role
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

KEYS = (
    "preset", "min_electronic", "min_print", "bill_aging", "communicate_on_update", "bill_reset_flag",
    "reset_on_fields", "reset_fields", "drop_to_paper_on_opt_out", "skip_paper_when_electronic",
)  # fmt: skip
DEFAULTS = {
    "preset": "standard-30", "min_electronic": "0.00", "min_print": "0.00", "bill_aging": "natural",
    "communicate_on_update": False, "bill_reset_flag": False, "reset_on_fields": False,
    "reset_fields": ["amount_due"], "drop_to_paper_on_opt_out": False, "skip_paper_when_electronic": False,
}  # fmt: skip


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile-dental")


@pytest.fixture
def manager(client, org):
    membership = MembershipFactory.create(organization=org, role=Role.BILLING_MANAGER)
    client.force_login(membership.user)
    return membership.user


def preset(slug: str) -> Preset:
    return Preset.objects.get(slug=slug)


def form_data(org, **overrides):
    data = {
        "organization": org.pk,
        "preset": preset("standard-30").pk,
        "min_electronic": "0.00",
        "min_print": "0.00",
        "bill_aging": "natural",
        "reset_fields": ["amount_due"],
        "run_at": "07:00",
        "paper_cost": "0.75",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


# --- admin -----------------------------------------------------------------------------------------------


def test_a_billing_managers_change_is_audited_with_old_and_new_values(client, org, manager):
    row = DunningSettings.objects.create(organization=org, preset=preset("standard-30"))
    url = reverse("admin:dunning_dunningsettings_change", args=[row.pk])
    data = form_data(org, preset=preset("accelerated-14").pk, min_electronic="5.00", skip_paper_when_electronic="on",
                     reset_fields=["due_date", "amount_due"])  # fmt: skip
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    row.refresh_from_db()
    assert row.preset is not None
    assert (row.preset.slug, row.min_electronic, row.skip_paper_when_electronic, row.reset_fields) == (
        "accelerated-14",
        Decimal("5.00"),
        True,
        ["amount_due", "due_date"],
    )
    event = AuditEvent.objects.get(action="admin.change")
    assert (event.actor, event.organization, event.object_type) == (manager, org, "dunning.DunningSettings")
    assert event.changes["preset"] == ["Standard 30-day", "Accelerated 14-day"]
    assert event.changes["min_electronic"] == ["0.00", "5.00"]
    assert event.changes["skip_paper_when_electronic"] == ["False", "True"]
    assert event.changes["reset_fields"] == ["amount_due", "amount_due, due_date"]
    assert "min_print" not in event.changes
    # ... and visible to the billing manager in the audit admin.
    listing = client.get(reverse("admin:practices_auditevent_changelist")).content.decode()
    assert "admin.change" in listing
    assert "dunning.DunningSettings" in listing


def test_the_chosen_presets_schedule_is_shown_with_template_links(client, org, manager):
    row = DunningSettings.objects.create(organization=org, preset=preset("standard-30"))
    page = client.get(reverse("admin:dunning_dunningsettings_change", args=[row.pk])).content.decode()
    chosen = PresetStep.objects.get(preset__slug="standard-30", bill_age_days=90, channel="paper").template
    assert chosen is not None
    default_email = Template.objects.get(organization__isnull=True, kind="statement", channel="email")
    chosen_url = reverse("admin:notifications_template_preview", args=[chosen.pk])
    # The previews show this organization's own values (issue 12).
    assert f'<a href="{chosen_url}?organization={org.pk}">{chosen.pk}</a>' in page
    default_url = reverse("admin:notifications_template_preview", args=[default_email.pk])
    assert f'<a href="{default_url}?organization={org.pk}">System default</a>' in page
    assert "<th>Cycle</th><th>Bill age (days)</th><th>Notification type</th>" in page
    assert "<tr><td>4</td><td>90</td><td>Final notice</td><td>Paper</td>" in page
    # The link works for the billing manager, and shows the practice's name.
    preview = client.get(f"{default_url}?organization={org.pk}")
    assert preview.status_code == 200
    assert preview.context["preview_organization"] == org
    assert client.get(chosen_url).status_code == 200


def test_the_change_form_asks_for_the_schedule_when_a_preset_is_chosen(client, org, manager):
    row = DunningSettings.objects.create(organization=org, preset=preset("standard-30"))
    page = client.get(reverse("admin:dunning_dunningsettings_change", args=[row.pk])).content.decode()
    url = reverse("admin:dunning_dunningsettings_schedule", args=[row.pk])
    assert (
        f'<div id="preset-schedule" aria-live="polite" hx-get="{url}" hx-include="#id_preset" '
        'hx-trigger="preset-chosen from:#id_preset">'
    ) in page
    # htmx and the script that passes select2's choice on, as static files (no inline script: CSP).
    assert 'src="/static/django_htmx/htmx-2.min.js"' in page
    assert 'src="/static/js/preset-schedule.js"' in page


def test_the_schedule_of_a_chosen_preset_is_drawn_without_saving_it(client, org, manager):
    row = DunningSettings.objects.create(organization=org, preset=preset("standard-30"))
    url = reverse("admin:dunning_dunningsettings_schedule", args=[row.pk])
    response = client.get(url, {"preset": preset("accelerated-14").pk}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    fragment = response.content.decode()
    assert "Not saved yet: the schedule of “Accelerated 14-day” applies once you save" in fragment
    assert "<tr><td>1</td><td>5</td><td>Reminder</td><td>SMS</td>" in fragment
    assert '<span id="preset-cycle-days" hx-swap-oob="true">14</span>' in fragment
    assert '<span id="preset-paper-cycle-days" hx-swap-oob="true">28</span>' in fragment
    row.refresh_from_db()
    assert row.preset == preset("standard-30")
    assert not AuditEvent.objects.exists()
    # The saved preset again: no note; no preset: the schedule says so.
    same = client.get(url, {"preset": preset("standard-30").pk}).content.decode()
    assert "Not saved yet" not in same and "<tr><td>4</td><td>90</td><td>Final notice</td>" in same
    none = client.get(url, {"preset": ""}).content.decode()
    assert "No preset: this organization&#x27;s bills are not dunned." in none
    assert '<span id="preset-cycle-days" hx-swap-oob="true">—</span>' in none
    assert client.get(url, {"preset": "999999"}).status_code == 400


def test_the_schedule_of_another_organization_answers_404(client, org, manager):
    other = DunningSettings.objects.create(organization=OrganizationFactory.create(slug="other"))
    url = reverse("admin:dunning_dunningsettings_schedule", args=[other.pk])
    assert client.get(url, {"preset": preset("standard-30").pk}).status_code == 404


def test_the_cycle_days_are_read_only_and_come_from_the_preset(client, org, manager):
    row = DunningSettings.objects.create(organization=org, preset=preset("accelerated-14"))
    url = reverse("admin:dunning_dunningsettings_change", args=[row.pk])
    response = client.get(url)
    form = response.context["adminform"].form
    assert "cycle_days" not in form.fields and "paper_cycle_days" not in form.fields
    readonly = {
        field.field["name"]: field.contents()
        for fieldset in response.context["adminform"]
        for line in fieldset
        for field in line
        if field.is_readonly
    }
    assert (strip_tags(readonly["cycle_days"]), strip_tags(readonly["paper_cycle_days"])) == ("14", "28")
    client.post(url, form_data(org, preset=row.preset_id, cycle_days="3", paper_cycle_days="3"))
    assert (preset("accelerated-14").cycle_days, preset("accelerated-14").paper_cycle_days) == (14, 28)


def test_the_preset_is_chosen_from_a_searchable_drop_down(client, org, manager):
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "dunning", "model_name": "dunningsettings", "field_name": "preset", "term": "accel"},
    )
    assert response.status_code == 200
    assert [result["text"] for result in response.json()["results"]] == ["Accelerated 14-day"]
    row = DunningSettings.objects.create(organization=org, preset=preset("standard-30"))
    page = client.get(reverse("admin:dunning_dunningsettings_change", args=[row.pk])).content.decode()
    assert "admin-autocomplete" in page


def test_front_desk_cannot_reach_the_preset_search(client, org):
    membership = MembershipFactory.create(organization=org, role=Role.FRONT_DESK)
    client.force_login(membership.user)
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "dunning", "model_name": "dunningsettings", "field_name": "preset", "term": ""},
    )
    assert response.status_code == 403


def test_nobody_adds_settings_in_the_admin(client, admin_client, org, manager):
    # The row is made with the organization (issue 12); Add is not offered, to a billing manager or to ops.
    DunningSettings.objects.create(organization=org, preset=preset("standard-30"))
    add = reverse("admin:dunning_dunningsettings_add")
    for user_client in (client, admin_client):
        listing = user_client.get(reverse("admin:dunning_dunningsettings_changelist"))
        assert listing.status_code == 200
        assert listing.context["has_add_permission"] is False
        assert add not in listing.content.decode()
        assert user_client.get(add).status_code == 403
        assert user_client.post(add, form_data(org)).status_code == 403
    assert DunningSettings.objects.count() == 1
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"reset_fields": ["amount_due", "patient_name"]}, "reset_fields"),
        ({"min_electronic": "-1.00"}, "min_electronic"),
        ({"min_print": "-0.01"}, "min_print"),
        ({"bill_aging": "sometimes"}, "bill_aging"),
        ({"preset": "999999"}, "preset"),
    ],
)
def test_the_settings_form_rejects_bad_values(client, org, manager, overrides, field):
    row = DunningSettings.objects.create(organization=org, preset=preset("standard-30"))
    response = client.post(
        reverse("admin:dunning_dunningsettings_change", args=[row.pk]), form_data(org, **overrides)
    )
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not AuditEvent.objects.exists()


def test_another_organizations_settings_answer_404(client, org, manager):
    other = DunningSettings.objects.create(organization=OrganizationFactory.create(slug="other"))
    url = reverse("admin:dunning_dunningsettings_change", args=[other.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, form_data(other.organization)).status_code == 404
    mine = DunningSettings.objects.create(organization=org)
    listing = client.get(reverse("admin:dunning_dunningsettings_changelist"))
    assert list(listing.context["cl"].result_list) == [mine]


def test_settings_of_an_organization_where_one_is_front_desk_are_not_shown(client, org, manager):
    front_desk_org = OrganizationFactory.create(slug="front-desk-only")
    MembershipFactory.create(user=manager, organization=front_desk_org, role=Role.FRONT_DESK)
    theirs = DunningSettings.objects.create(organization=front_desk_org)
    url = reverse("admin:dunning_dunningsettings_change", args=[theirs.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, form_data(front_desk_org)).status_code == 404


def test_front_desk_cannot_see_dunning_settings_or_runs(client, org):
    DunningSettings.objects.create(organization=org)
    membership = MembershipFactory.create(organization=org, role=Role.FRONT_DESK)
    client.force_login(membership.user)
    assert client.get(reverse("admin:dunning_dunningsettings_changelist")).status_code == 403
    assert client.get(reverse("admin:dunning_dunningrun_changelist")).status_code == 403


def test_dunning_runs_are_read_only(admin_client, org):
    from dunning.models import DunningRun

    run = DunningRun.objects.create(organization=org, run_date="2026-11-24", decisions=3)
    page = admin_client.get(reverse("admin:dunning_dunningrun_change", args=[run.pk]))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert admin_client.get(reverse("admin:dunning_dunningrun_add")).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:dunning_dunningrun_delete", args=[run.pk]), {"post": "yes"}
        ).status_code
        == 403
    )


# --- selector --------------------------------------------------------------------------------------------


def test_without_a_row_the_defaults_apply_with_the_standard_preset(org):
    settings = dunning_settings_get(organization=org)
    assert settings.pk is None
    assert settings.preset == preset("standard-30")
    assert not DunningSettings.objects.exists()
    Preset.objects.filter(slug="standard-30").update(slug="renamed")
    assert dunning_settings_get(organization=org).preset is None


# --- org_settings ----------------------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), err.getvalue()


def dunning_keys(out: str) -> dict:
    document = json.loads(out)
    return {key: document[key] for key in KEYS}


def test_the_defaults_read_without_a_settings_row(org):
    code, out, _ = run("org_settings", "--org", "smile-dental", "--json")
    assert code == 0
    assert dunning_keys(out) == DEFAULTS
    assert list(dunning_keys(out)) == list(KEYS)
    assert not DunningSettings.objects.exists()


@pytest.mark.parametrize(
    ("assignment", "key", "shown", "stored"),
    [
        ("preset=accelerated-14", "preset", "accelerated-14", "accelerated-14"),
        ("preset=none", "preset", None, None),
        ("min_electronic=25", "min_electronic", "25.00", Decimal("25.00")),
        ("min_electronic=0.5", "min_electronic", "0.50", Decimal("0.50")),
        ("min_print=3.25", "min_print", "3.25", Decimal("3.25")),
        ("bill_aging=dunning_status", "bill_aging", "dunning_status", "dunning_status"),
        ("communicate_on_update=true", "communicate_on_update", True, True),
        ("bill_reset_flag=true", "bill_reset_flag", True, True),
        ("reset_on_fields=true", "reset_on_fields", True, True),
        ("reset_fields=guarantor_id, due_date", "reset_fields", ["due_date", "guarantor_id"],
         ["due_date", "guarantor_id"]),
        ("reset_fields=amount_due,statement_date,due_date,guarantor_id", "reset_fields",
         ["amount_due", "statement_date", "due_date", "guarantor_id"],
         ["amount_due", "statement_date", "due_date", "guarantor_id"]),
        ("reset_fields=", "reset_fields", [], []),
        ("drop_to_paper_on_opt_out=true", "drop_to_paper_on_opt_out", True, True),
        ("skip_paper_when_electronic=true", "skip_paper_when_electronic", True, True),
    ],
)  # fmt: skip
def test_each_key_is_set_and_read_back(org, assignment, key, shown, stored):
    code, out, _ = run("org_settings", "--org", "smile-dental", "--set", assignment, "--json")
    assert code == 0
    assert json.loads(out)[key] == shown
    row = DunningSettings.objects.get(organization=org)
    value = getattr(row, key)
    assert (value.slug if isinstance(value, Preset) else value) == stored
    _, again, _ = run("org_settings", "--org", "smile-dental", "--json")
    assert json.loads(again)[key] == shown
    # Every other key keeps its default.
    assert {k: v for k, v in dunning_keys(again).items() if k != key} == {
        k: v for k, v in DEFAULTS.items() if k != key
    }


def test_a_boolean_is_set_back_to_false(org):
    run("org_settings", "--org", "smile-dental", "--set", "bill_reset_flag=true")
    code, out, _ = run("org_settings", "--org", "smile-dental", "--set", "bill_reset_flag=false", "--json")
    assert code == 0
    assert json.loads(out)["bill_reset_flag"] is False
    assert DunningSettings.objects.get().bill_reset_flag is False


def test_the_row_is_created_on_the_first_write_with_the_default_preset(org):
    run("org_settings", "--org", "smile-dental", "--set", "min_print=10")
    row = DunningSettings.objects.get(organization=org)
    assert row.preset is not None
    assert (row.preset.slug, row.min_print, row.min_electronic) == (
        "standard-30",
        Decimal("10.00"),
        Decimal("0"),
    )
    run("org_settings", "--org", "smile-dental", "--set", "bill_aging=dunning_status")
    assert DunningSettings.objects.count() == 1
    assert DunningSettings.objects.get().min_print == Decimal("10.00")


def test_a_dunning_setting_change_is_audited_with_old_and_new_values(org):
    code, _, _ = run("org_settings", "--org", "smile-dental", "--set", "preset=electronic-only",
                     "--set", "min_electronic=2.50", "--set", "reset_fields=due_date")  # fmt: skip
    assert code == 0
    event = AuditEvent.objects.get(action="settings.change")
    assert event.actor_label == "command:org_settings"
    assert event.changes == {
        "preset": ["standard-30", "electronic-only"],
        "min_electronic": ["0.00", "2.50"],
        "reset_fields": [["amount_due"], ["due_date"]],
    }


@pytest.mark.parametrize(
    "assignment",
    [
        "preset=no-such-preset",
        "preset=",
        "min_electronic=-1",
        "min_electronic=1.005",
        "min_electronic=abc",
        "min_print=",
        "min_print=1e3",
        "bill_aging=sometimes",
        "bill_aging=",
        "communicate_on_update=yes",
        "bill_reset_flag=True",
        "reset_on_fields=1",
        "drop_to_paper_on_opt_out=",
        "skip_paper_when_electronic=on",
        "reset_fields=amount_due,patient_name",
    ],
)
def test_a_bad_value_exits_2_and_changes_nothing(org, assignment):
    run("org_settings", "--org", "smile-dental", "--set", "min_print=4")
    before = list(DunningSettings.objects.values())
    events = AuditEvent.objects.count()
    # A valid assignment in the same call is not applied either.
    code, out, message = run("org_settings", "--org", "smile-dental", "--set", "min_electronic=3",
                             "--set", assignment, "--json")  # fmt: skip
    assert code == 2
    assert out == ""
    assert assignment.split("=")[0] in message
    assert list(DunningSettings.objects.values()) == before
    assert AuditEvent.objects.count() == events


def test_an_unknown_preset_names_the_known_ones(org):
    code, _, message = run("org_settings", "--org", "smile-dental", "--set", "preset=standard-60")
    assert code == 2
    assert "unknown preset 'standard-60'" in message
    assert "accelerated-14, electronic-only, standard-30" in message
    assert not DunningSettings.objects.exists()
