"""The compliance keys of SPEC §10 (K1, K2) in ``org_settings``: frequency_cap, send_on_sundays, send_on_holidays.
A bad value exits 2, changes nothing and says which form is expected; a change is audited (T5)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from notifications.models import NotificationSettings
from practices.models import AuditEvent
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), err.getvalue()


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")


def settings_json() -> dict:
    return json.loads(run("org_settings", "--org", "smile-dental", "--json")[1])


def test_the_defaults_are_no_cap_and_every_day(org):
    document = settings_json()
    assert (document["frequency_cap"], document["send_on_sundays"], document["send_on_holidays"]) == (
        None,
        True,
        True,
    )
    lines = run("org_settings", "--org", "smile-dental")[1].splitlines()
    assert {"frequency_cap=none", "send_on_sundays=true", "send_on_holidays=true"} <= set(lines)


def test_setting_them_is_stored_and_audited(org):
    code, _, _ = run("org_settings", "--org", "smile-dental", "--set", "frequency_cap=3/7d", "send_on_sundays=false",
                     "--set", "send_on_holidays=false")  # fmt: skip
    assert code == 0
    row = NotificationSettings.objects.get(organization=org)
    assert (row.frequency_cap, row.send_on_sundays, row.send_on_holidays) == ("3/7d", False, False)
    assert settings_json()["frequency_cap"] == "3/7d"
    event = AuditEvent.objects.get(action="settings.change")
    assert event.changes["frequency_cap"] == [None, "3/7d"]
    assert event.changes["send_on_sundays"] == [True, False]
    code, _, _ = run("org_settings", "--org", "smile-dental", "--set", "frequency_cap=none")
    assert (code, settings_json()["frequency_cap"]) == (0, None)


@pytest.mark.parametrize(
    ("assignment", "expected_form"),
    [
        ("frequency_cap=3/week", "expected N/Dd, e.g. 3/7d (at most 3 messages in any 7 days), or none"),
        ("frequency_cap=0/7d", "expected N/Dd"),
        ("send_on_sundays=no", "expected true or false"),
        ("send_on_holidays=", "expected true or false"),
    ],
)
def test_a_bad_value_exits_2_changes_nothing_and_names_the_expected_form(org, assignment, expected_form):
    before = settings_json()
    # A good assignment beside the bad one is not applied either.
    code, _, message = run("org_settings", "--org", "smile-dental", "--set", "min_print=4.00", assignment)
    assert code == 2
    assert expected_form in message
    assert settings_json() == before
    assert not AuditEvent.objects.exists()
    assert not NotificationSettings.objects.exists()
