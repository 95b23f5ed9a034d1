"""The §10 commands of the foundation: create_org, import_feed, org_settings, seed_demo."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dunning.models import DunningSettings
from payments.models import PaymentSettings
from practices.models import AuditEvent, Organization, Patient
from tests.factories import OrganizationFactory, feed_patient, feed_statement

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command(*args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


# --- create_org ---------------------------------------------------------------------------------------


def test_create_org_prints_json_and_creates_the_organization():
    code, out = run(
        "create_org",
        "--slug",
        "smile-dental",
        "--name",
        "Smile Dental",
        "--timezone",
        "America/Denver",
        "--json",
    )
    assert code == 0
    assert json.loads(out) == {"slug": "smile-dental", "name": "Smile Dental", "timezone": "America/Denver"}
    assert Organization.objects.get().timezone == "America/Denver"


def test_create_org_exits_2_when_the_slug_exists():
    OrganizationFactory.create(slug="smile-dental")
    code, _ = run("create_org", "--slug", "smile-dental", "--name", "X", "--timezone", "America/Denver")
    assert code == 2


def test_create_org_exits_2_on_an_unknown_zone():
    code, _ = run("create_org", "--slug", "x", "--name", "X", "--timezone", "Mars/Olympus")
    assert code == 2
    assert not Organization.objects.exists()


# --- import_feed --------------------------------------------------------------------------------------


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile-dental")


def test_import_feed_exits_0_when_nothing_is_rejected(org, write_feed):
    code, out = run("import_feed", str(write_feed(patients=[feed_patient("P1")])), "--json")
    assert code == 0
    assert json.loads(out) == {"applied": 1, "rejected": 0, "errors": [], "warnings": []}


def test_import_feed_exits_3_and_reports_each_bad_record_by_pointer(org, write_feed):
    path = write_feed(
        patients=[feed_patient("P1"), feed_patient("P2", date_of_birth="12/01/1980")],
        statements=[feed_statement("S-1", "P1"), feed_statement("S-2", "P9")],
    )
    code, out = run("import_feed", str(path), "--json")
    summary = json.loads(out)
    assert code == 3
    assert (summary["applied"], summary["rejected"]) == (2, 2)
    assert [e["pointer"] for e in summary["errors"]] == [
        "/patients/1/date_of_birth",
        "/statements/1/guarantor_id",
    ]


def test_import_feed_uses_org_when_the_feed_names_none(org, write_feed):
    code, _ = run(
        "import_feed",
        str(write_feed(organization=None, patients=[feed_patient("P1")])),
        "--org",
        "smile-dental",
    )
    assert code == 0
    assert Patient.objects.get().organization == org


def test_import_feed_exits_2_on_an_unreadable_file(org, tmp_path):
    code, out = run("import_feed", str(tmp_path / "missing.json"), "--json")
    assert code == 2
    assert "cannot read" in json.loads(out)["errors"][0]["message"]


def test_import_feed_exits_2_on_a_non_json_file(org, tmp_path):
    path = tmp_path / "feed.json"
    path.write_text("{not json")
    code, out = run("import_feed", str(path), "--json")
    assert code == 2
    assert "not JSON" in json.loads(out)["errors"][0]["message"]


def test_import_feed_exits_2_on_a_wrong_shape(org, tmp_path):
    path = tmp_path / "feed.json"
    path.write_text(
        json.dumps({"organization": "smile-dental", "generated_at": "2026-11-24T06:00:00Z", "patients": "P1"})
    )
    assert run("import_feed", str(path))[0] == 2


def test_import_feed_exits_2_on_an_unknown_organization(write_feed):
    code, out = run(
        "import_feed", str(write_feed(organization="nope", patients=[feed_patient("P1")])), "--json"
    )
    assert code == 2
    assert json.loads(out)["errors"][0]["message"] == "unknown organization 'nope'"


def test_import_feed_exits_2_when_org_and_feed_disagree(org, write_feed):
    OrganizationFactory.create(slug="other")
    assert run("import_feed", str(write_feed(patients=[feed_patient("P1")])), "--org", "other")[0] == 2
    assert not Patient.objects.exists()


def test_import_feed_human_output_names_the_errors(org, write_feed):
    code, out = run("import_feed", str(write_feed(patients=[feed_patient("P1", last_name="")])))
    assert code == 3
    assert "/patients/0/last_name: is required" in out


# --- org_settings -------------------------------------------------------------------------------------


def test_org_settings_shows_the_timezone(org):
    code, out = run("org_settings", "--org", "smile-dental", "--json")
    assert code == 0
    assert json.loads(out)["timezone"] == "America/Denver"


def test_org_settings_sets_a_value_and_audits_it(org):
    code, out = run("org_settings", "--org", "smile-dental", "--set", "timezone=America/Boise", "--json")
    assert code == 0
    assert json.loads(out)["timezone"] == "America/Boise"
    event = AuditEvent.objects.get(action="settings.change")
    assert event.changes == {"timezone": ["America/Denver", "America/Boise"]}
    assert event.actor_label == "command:org_settings"


@pytest.mark.parametrize("assignment", ["colour=blue", "timezone=Mars/Olympus", "timezone"])
def test_org_settings_rejects_bad_input_and_changes_nothing(org, assignment):
    code, _ = run(
        "org_settings", "--org", "smile-dental", "--set", "timezone=America/Boise", "--set", assignment
    )
    assert code == 2
    org.refresh_from_db()
    assert org.timezone == "America/Denver"


def test_org_settings_exits_2_for_an_unknown_organization():
    assert run("org_settings", "--org", "nope")[0] == 2


# --- seed_demo ----------------------------------------------------------------------------------------


def test_seed_demo_creates_a_realistic_organization_and_can_run_twice():
    code, out = run("seed_demo")
    assert code == 0
    for login in ("frontdesk", "billing", "orgadmin", "ops"):
        assert login in out
    organization = Organization.objects.get(slug="demo-dental")
    # Its settings rows are there for the billing manager to open (issue 12).
    assert DunningSettings.objects.filter(organization=organization).exists()
    assert PaymentSettings.objects.filter(organization=organization).exists()
    patients = Patient.objects.filter(organization=organization)
    assert 250 <= patients.count() <= 400
    assert patients.filter(is_guarantor=False).exists()
    assert patients.filter(on_payment_plan=True).exists()
    assert patients.filter(open_claims__gt=0).exists()
    assert patients.filter(mobile_phone="").exists()
    assert patients.filter(address_status="invalid").exists()
    categories = set(organization.accounts.values_list("aging_category", flat=True))
    assert {"0_30", "31_60", "61_90", "over_90"} <= categories
    count = patients.count()
    assert run("seed_demo")[0] == 0
    assert Patient.objects.filter(organization=organization).count() == count
