"""org_settings' human output (SPEC §10: "human output prints values in the form --set takes"): every key is
printed as a KEY=VALUE line that ``--set`` takes back unchanged, and its JSON stays as it was.

Issue 12 (Ops): the command printed Python reprs (``['0_30', …]``, ``None``, ``False``)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from practices.models import AuditEvent, Organization
from practices.org_settings import REGISTRY, setting_text
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

# Every key away from its default, including the values that read as null or as an empty list.
CHANGED = [
    "timezone=America/Boise",
    "min_payment_amount=12.50",
    "eligible_aging=31_60,over_90",
    "max_open_claims=0",
    "request_channels=email",
    "quiet_hours=20:30-09:15",
    "preset=none",
    "min_electronic=2.5",
    "min_print=10",
    "bill_aging=dunning_status",
    "communicate_on_update=true",
    "bill_reset_flag=true",
    "reset_on_fields=true",
    "reset_fields=",
    "drop_to_paper_on_opt_out=true",
    "skip_paper_when_electronic=true",
    "frequency_cap=3/7d",
    "send_on_sundays=false",
    "send_on_holidays=false",
]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def shown(slug: str) -> list[str]:
    return run("org_settings", "--org", slug).splitlines()


def as_json(slug: str) -> dict:
    return json.loads(run("org_settings", "--org", slug, "--json"))


@pytest.fixture
def org() -> Organization:
    return OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")


def test_the_defaults_are_printed_in_the_form_set_takes(org):
    lines = shown("smile-dental")
    assert [line.partition("=")[0] for line in lines] == list(REGISTRY)
    assert {
        "timezone=America/Denver",
        "min_payment_amount=0.00",
        "eligible_aging=0_30,31_60,61_90,over_90",
        "max_open_claims=none",
        "request_channels=sms,email",
        "preset=standard-30",
        "min_electronic=0.00",
        "min_print=0.00",
        "bill_aging=natural",
        "communicate_on_update=false",
        "bill_reset_flag=false",
        "reset_on_fields=false",
        "reset_fields=amount_due",
        "drop_to_paper_on_opt_out=false",
        "skip_paper_when_electronic=false",
        "quiet_hours=21:00-08:00",
    } <= set(lines)


def test_every_key_of_spec_section_10_is_registered():
    # SPEC §10's keys; a key added later is round-tripped at its default value by the tests below.
    assert {assignment.partition("=")[0] for assignment in CHANGED} <= set(REGISTRY)


def test_changed_values_print_as_set_takes_them(org):
    run("org_settings", "--org", "smile-dental", "--set", *CHANGED)
    lines = shown("smile-dental")
    assert "preset=none" in lines
    assert "max_open_claims=0" in lines
    assert "reset_fields=" in lines
    assert "eligible_aging=31_60,over_90" in lines
    assert "min_electronic=2.50" in lines
    assert "communicate_on_update=true" in lines
    assert not [line for line in lines if any(repr_ in line for repr_ in ("None", "True", "False", "[", "'"))]


@pytest.mark.parametrize("changed", [False, True], ids=["defaults", "every-key-changed"])
def test_printed_lines_passed_to_set_give_the_same_values(org, changed):
    if changed:
        run("org_settings", "--org", "smile-dental", "--set", *CHANGED)
    lines = shown("smile-dental")
    # Print -> --set on another organization -> the same values, key by key.
    OrganizationFactory.create(slug="copy", timezone="America/New_York")
    assert as_json("copy") != as_json("smile-dental")
    run("org_settings", "--org", "copy", "--set", *lines)
    assert as_json("copy") == as_json("smile-dental")
    assert shown("copy") == lines
    # ... and back onto the same organization, which changes nothing (no audit event).
    events = AuditEvent.objects.filter(action="settings.change").count()
    run("org_settings", "--org", "smile-dental", *[arg for line in lines for arg in ("--set", line)])
    assert shown("smile-dental") == lines
    assert AuditEvent.objects.filter(action="settings.change").count() == events


def test_the_json_output_keeps_its_types(org):
    run(
        "org_settings",
        "--org",
        "smile-dental",
        "--set",
        "max_open_claims=none",
        "preset=none",
        "reset_fields=",
    )
    document = as_json("smile-dental")
    assert (document["max_open_claims"], document["preset"], document["reset_fields"]) == (None, None, [])
    assert document["eligible_aging"] == ["0_30", "31_60", "61_90", "over_90"]
    assert document["communicate_on_update"] is False
    assert document["min_payment_amount"] == "0.00"


def test_one_set_carries_several_assignments(org):
    run("org_settings", "--org", "smile-dental", "--set", "min_print=4", "bill_aging=dunning_status",
        "--set", "max_open_claims=2")  # fmt: skip
    document = as_json("smile-dental")
    assert (document["min_print"], document["bill_aging"], document["max_open_claims"]) == (
        "4.00",
        "dunning_status",
        2,
    )


def test_a_bad_assignment_among_several_in_one_set_changes_nothing(org):
    before = as_json("smile-dental")
    with pytest.raises(CommandError) as exc:
        run("org_settings", "--org", "smile-dental", "--set", "min_print=4", "bill_aging=sometimes")
    assert exc.value.returncode == 2
    assert as_json("smile-dental") == before


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "true"), (False, "false"), (None, "none"), ([], ""), (["0_30", "over_90"], "0_30,over_90"),
     ("12.50", "12.50"), (0, "0"), ("21:00-08:00", "21:00-08:00")],
)  # fmt: skip
def test_setting_text(value, text):
    assert setting_text(value) == text
