"""Dunning presets (SPEC §6): the shipped schedules, their rules, list_presets (§10) and the admin (T2)."""

from __future__ import annotations

import importlib
import json
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.urls import reverse

from dunning.models import STEP_KINDS, DunningSettings, Preset, PresetStep
from dunning.presets import list_presets_rows, preset_schedule, preset_validate
from notifications.models import Template
from practices.models import Role
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

BUILT_IN = {
    "standard-30": ("Standard 30-day", 30, 30, {"email", "sms", "paper"}),
    "accelerated-14": ("Accelerated 14-day", 14, 28, {"email", "sms", "paper"}),
    "electronic-only": ("Electronic only", 30, 30, {"email", "sms"}),
}


def steps_of(preset: Preset) -> list[tuple[int, str, str]]:
    return list(
        preset.steps.order_by("bill_age_days", "channel").values_list("bill_age_days", "kind", "channel")
    )


# --- the shipped presets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", list(BUILT_IN))
def test_the_built_in_presets_ship_with_every_kind_of_step(slug):
    name, cycle_days, paper_cycle_days, channels = BUILT_IN[slug]
    preset = Preset.objects.get(slug=slug)
    assert (preset.name, preset.cycle_days, preset.paper_cycle_days, preset.built_in) == (
        name,
        cycle_days,
        paper_cycle_days,
        True,
    )
    steps = steps_of(preset)
    assert {kind for _, kind, _ in steps} == set(STEP_KINDS)
    assert {channel for _, _, channel in steps} == channels
    assert steps[0][:2] == (0, "statement")
    assert steps[-1][1] == "final"
    assert preset_validate(cycle_days=cycle_days, paper_cycle_days=paper_cycle_days, steps=steps) == []


def test_the_standard_preset_has_the_documented_schedule():
    assert steps_of(Preset.objects.get(slug="standard-30")) == [
        (0, "statement", "email"), (0, "statement", "paper"), (0, "statement", "sms"),
        (10, "reminder", "sms"), (20, "reminder", "email"),
        (30, "due", "email"), (30, "due", "paper"), (30, "due", "sms"),
        (45, "past_due", "sms"), (60, "past_due", "email"), (60, "past_due", "paper"),
        (75, "reminder", "sms"),
        (90, "final", "email"), (90, "final", "paper"), (90, "final", "sms"),
    ]  # fmt: skip


def test_one_shipped_step_points_at_a_system_default_template_and_the_rest_use_the_default():
    chosen = PresetStep.objects.filter(template__isnull=False).get()
    assert (chosen.preset.slug, chosen.bill_age_days, chosen.channel) == ("standard-30", 90, "paper")
    assert chosen.template == Template.objects.get(organization__isnull=True, kind="final", channel="paper")


def test_creating_the_presets_again_changes_nothing_and_puts_back_a_missing_step():
    create = importlib.import_module("dunning.migrations.0002_presets").create_presets
    before = sorted(
        PresetStep.objects.values_list("preset__slug", "bill_age_days", "kind", "channel", "template")
    )
    PresetStep.objects.filter(preset__slug="accelerated-14", bill_age_days=28, channel="paper").delete()
    Preset.objects.filter(slug="electronic-only").update(cycle_days=7)
    create(apps, None)
    create(apps, None)
    after = sorted(
        PresetStep.objects.values_list("preset__slug", "bill_age_days", "kind", "channel", "template")
    )
    assert after == before
    assert Preset.objects.get(slug="electronic-only").cycle_days == 30
    assert Preset.objects.filter(built_in=True).count() == 3


# --- preset_validate -------------------------------------------------------------------------------------


def test_a_valid_schedule_has_no_errors():
    steps = [(0, "statement", "email"), (0, "statement", "paper"), (15, "due", "sms"), (60, "final", "paper")]
    assert preset_validate(cycle_days=15, paper_cycle_days=30, steps=steps) == []


@pytest.mark.parametrize(
    ("steps", "paper_cycle_days", "expected"),
    [
        ([(0, "statement", "email"), (45, "final", "paper")], 30, "multiples of the paper cycle (30 days)"),
        ([(0, "statement", "paper"), (14, "due", "paper")], 28, "multiples of the paper cycle (28 days)"),
        ([(0, "statement", "sms"), (0, "reminder", "sms")], 30, "at most one step per bill age"),
        ([], 30, "at least one step"),
        ([(0, "invoice", "email")], 30, "unknown kind 'invoice'"),
        ([(0, "statement", "fax")], 30, "unknown channel 'fax'"),
        ([(-1, "statement", "email")], 30, "cannot be negative"),
        ([(0, "statement", "email")], 0, "Paper cycle days must be a positive"),
    ],
)
def test_preset_validate_names_each_broken_rule(steps, paper_cycle_days, expected):
    errors = preset_validate(cycle_days=30, paper_cycle_days=paper_cycle_days, steps=steps)
    assert any(expected in error for error in errors), errors


def test_the_same_age_on_different_channels_is_allowed():
    steps = [(30, "due", "sms"), (30, "due", "email"), (30, "due", "paper")]
    assert preset_validate(cycle_days=30, paper_cycle_days=30, steps=steps) == []


# --- schedule rows and list_presets ----------------------------------------------------------------------


def test_the_schedule_rows_give_the_cycle_and_the_template():
    rows = preset_schedule(Preset.objects.get(slug="accelerated-14"))
    by_key = {(row["bill_age_days"], row["channel"]): row for row in rows}
    assert by_key[(0, "email")] == {"cycle": 1, "bill_age_days": 0, "kind": "statement", "channel": "email",
                                    "template": "System default"}  # fmt: skip
    assert by_key[(13 + 1, "sms")]["cycle"] == 2
    assert by_key[(56, "paper")]["cycle"] == 5
    standard = preset_schedule(Preset.objects.get(slug="standard-30"))
    final_paper = next(row for row in standard if (row["bill_age_days"], row["channel"]) == (90, "paper"))
    assert final_paper["template"] == PresetStep.objects.get(template__isnull=False).template_id


def test_list_presets_json_has_the_contract_shape_sorted_by_slug():
    out = StringIO()
    call_command("list_presets", "--json", stdout=out)
    document = json.loads(out.getvalue())
    assert [row["slug"] for row in document] == ["accelerated-14", "electronic-only", "standard-30"]
    assert document == list_presets_rows()
    electronic = document[1]
    assert set(electronic) == {"slug", "name", "cycle_days", "paper_cycle_days", "steps"}
    assert (electronic["name"], electronic["cycle_days"], electronic["paper_cycle_days"]) == (
        "Electronic only",
        30,
        30,
    )
    assert electronic["steps"][:3] == [
        {"bill_age_days": 0, "kind": "statement", "channel": "email", "template": None},
        {"bill_age_days": 0, "kind": "statement", "channel": "sms", "template": None},
        {"bill_age_days": 10, "kind": "reminder", "channel": "sms", "template": None},
    ]
    template_id = PresetStep.objects.get(template__isnull=False).template_id
    standard_final_paper = next(
        step for step in document[2]["steps"] if (step["bill_age_days"], step["channel"]) == (90, "paper")
    )
    assert standard_final_paper["template"] == template_id
    assert isinstance(template_id, int)


def test_list_presets_without_json_prints_a_readable_schedule():
    out = StringIO()
    call_command("list_presets", stdout=out)
    text = out.getvalue()
    assert "standard-30: Standard 30-day (cycle 30 days, paper every 30 days)" in text
    assert "day  90  Final notice" in text
    assert "system default" in text


# --- admin (T2) ------------------------------------------------------------------------------------------


def preset_post(
    name="Gentle 20-day", slug="gentle-20", cycle_days=20, paper_cycle_days=40, steps=None, **extra
):
    steps = steps if steps is not None else [(0, "statement", "email", ""), (40, "final", "paper", "")]
    data = {
        "name": name,
        "slug": slug,
        "description": "",
        "cycle_days": str(cycle_days),
        "paper_cycle_days": str(paper_cycle_days),
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    for index, (age, kind, channel, template) in enumerate(steps):
        data |= {f"steps-{index}-bill_age_days": str(age), f"steps-{index}-kind": kind,
                 f"steps-{index}-channel": channel, f"steps-{index}-template": str(template)}  # fmt: skip
    data.update(extra)
    return data


def test_ops_add_a_preset_with_its_steps(admin_client):
    assert admin_client.get(reverse("admin:dunning_preset_add")).status_code == 200
    letter = Template.objects.get(organization__isnull=True, kind="final", channel="paper")
    steps = [(0, "statement", "email", ""), (20, "due", "sms", ""), (40, "final", "paper", letter.pk)]
    response = admin_client.post(reverse("admin:dunning_preset_add"), preset_post(steps=steps))
    assert response.status_code == 302, response.content.decode()[:3000]
    preset = Preset.objects.get(slug="gentle-20")
    assert preset.built_in is False
    assert steps_of(preset) == [(0, "statement", "email"), (20, "due", "sms"), (40, "final", "paper")]
    assert preset.steps.get(channel="paper").template == letter


def test_a_paper_step_off_the_paper_cycle_is_a_form_error(admin_client):
    steps = [(0, "statement", "email", ""), (30, "final", "paper", "")]
    response = admin_client.post(reverse("admin:dunning_preset_add"), preset_post(steps=steps))
    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.non_form_errors()
    assert any("multiples of the paper cycle (40 days)" in error for error in errors)
    assert not Preset.objects.filter(slug="gentle-20").exists()


def test_changing_the_paper_cycle_checks_the_existing_paper_steps(admin_client):
    preset = Preset.objects.create(slug="p", name="P", cycle_days=30, paper_cycle_days=30)
    step = PresetStep.objects.create(preset=preset, bill_age_days=30, kind="due", channel="paper")
    data = preset_post(name="P", slug="p", cycle_days=30, paper_cycle_days=45, steps=[])
    data |= {"steps-TOTAL_FORMS": "1", "steps-INITIAL_FORMS": "1", "steps-0-id": str(step.pk),
             "steps-0-preset": str(preset.pk), "steps-0-bill_age_days": "30", "steps-0-kind": "due",
             "steps-0-channel": "paper", "steps-0-template": ""}  # fmt: skip
    response = admin_client.post(reverse("admin:dunning_preset_change", args=[preset.pk]), data)
    assert response.status_code == 200
    assert "multiples of the paper cycle (45 days)" in response.content.decode()
    preset.refresh_from_db()
    assert preset.paper_cycle_days == 30


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "at least one step"),
        # Django's formset uniqueness check (the DB constraint) answers before preset_validate does.
        ([(0, "statement", "sms", ""), (0, "reminder", "sms", "")], "Please correct the duplicate data"),
    ],
)
def test_the_admin_rejects_other_broken_schedules(admin_client, steps, message):
    response = admin_client.post(reverse("admin:dunning_preset_add"), preset_post(steps=steps))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Preset.objects.filter(slug="gentle-20").exists()


def test_a_step_template_must_be_for_the_steps_channel(admin_client):
    sms = Template.objects.get(organization__isnull=True, kind="final", channel="sms")
    steps = [(0, "statement", "email", ""), (40, "final", "paper", sms.pk)]
    response = admin_client.post(reverse("admin:dunning_preset_add"), preset_post(steps=steps))
    assert response.status_code == 200
    assert not Preset.objects.filter(slug="gentle-20").exists()


def test_a_step_cannot_name_an_organizations_template(admin_client):
    own = Template.objects.create(organization=OrganizationFactory.create(), kind="final", channel="paper", name="Own",
                                  body="Pay.")  # fmt: skip
    steps = [(0, "statement", "email", ""), (40, "final", "paper", own.pk)]
    response = admin_client.post(reverse("admin:dunning_preset_add"), preset_post(steps=steps))
    assert response.status_code == 200
    assert not Preset.objects.filter(slug="gentle-20").exists()


def test_a_billing_manager_views_presets_read_only(client):
    membership = MembershipFactory.create(role=Role.BILLING_MANAGER)
    client.force_login(membership.user)
    standard = Preset.objects.get(slug="standard-30")
    assert client.get(reverse("admin:dunning_preset_changelist")).status_code == 200
    page = client.get(reverse("admin:dunning_preset_change", args=[standard.pk]))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert "Final notice" in page.content.decode()
    change = client.post(
        reverse("admin:dunning_preset_change", args=[standard.pk]),
        preset_post(name="Hacked", slug="standard-30", cycle_days=30, paper_cycle_days=30),
    )
    assert change.status_code == 403
    assert client.post(reverse("admin:dunning_preset_add"), preset_post()).status_code == 403
    assert (
        client.post(reverse("admin:dunning_preset_delete", args=[standard.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert Preset.objects.get(slug="standard-30").name == "Standard 30-day"
    assert not Preset.objects.filter(slug="gentle-20").exists()


def test_front_desk_cannot_see_presets(client):
    membership = MembershipFactory.create(role=Role.FRONT_DESK)
    client.force_login(membership.user)
    standard = Preset.objects.get(slug="standard-30")
    assert client.get(reverse("admin:dunning_preset_changelist")).status_code == 403
    assert client.get(reverse("admin:dunning_preset_change", args=[standard.pk])).status_code == 403


def test_built_in_presets_cannot_be_deleted_even_by_ops(admin_client):
    standard = Preset.objects.get(slug="standard-30")
    url = reverse("admin:dunning_preset_delete", args=[standard.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    response = admin_client.post(
        reverse("admin:dunning_preset_changelist"),
        {"action": "delete_selected", "_selected_action": [standard.pk], "post": "yes"},
    )
    assert response.status_code == 403
    assert Preset.objects.filter(slug="standard-30").exists()
    page = admin_client.get(reverse("admin:dunning_preset_change", args=[standard.pk])).content.decode()
    assert reverse("admin:dunning_preset_delete", args=[standard.pk]) not in page


def test_ops_delete_a_preset_of_their_own_unless_an_organization_uses_it(admin_client):
    mine = Preset.objects.create(slug="mine", name="Mine", cycle_days=30, paper_cycle_days=30)
    used = Preset.objects.create(slug="used", name="Used", cycle_days=30, paper_cycle_days=30)
    DunningSettings.objects.create(organization=OrganizationFactory.create(), preset=used)
    response = admin_client.post(
        reverse("admin:dunning_preset_changelist"),
        {"action": "delete_selected", "_selected_action": [mine.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Preset.objects.filter(slug="mine").exists()
    admin_client.post(reverse("admin:dunning_preset_delete", args=[used.pk]), {"post": "yes"})
    assert Preset.objects.filter(slug="used").exists()


def test_the_test_suite_puts_the_presets_back_after_a_flush():
    from tests.conftest import _restore_data_migration_rows

    expected = sorted(PresetStep.objects.values_list("preset__slug", "bill_age_days", "kind", "channel"))
    Preset.objects.all().delete()
    _restore_data_migration_rows()
    assert (
        sorted(PresetStep.objects.values_list("preset__slug", "bill_age_days", "kind", "channel")) == expected
    )
