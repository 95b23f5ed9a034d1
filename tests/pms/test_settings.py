"""The PMS keys of org_settings (SPEC §10): pms, pms_base_url, pms_developer_key and pms_customer_key (stored
encrypted with Fernet under PMS_KEYS_FERNET_KEY, shown only as set/unset: org_settings, its JSON, the admin
and the audit), pms_sync_time; and the daily sync at each organization's local pms_sync_time (beat)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from dunning_project.periodic import PERIODIC_TASKS
from pms import tasks
from pms.connections import opendental_client
from pms.models import Connection, PmsKind
from pms.services import organizations_due_for_sync
from practices.models import AuditEvent, Organization, Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

DEVELOPER = "NFF6i0KrXrxDkZHt"
CUSTOMER = "VzkmZEaUWOjnQX2z"


def run(*args: str) -> str:
    out = StringIO()
    call_command("org_settings", "--org", "smile-dental", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def org() -> Organization:
    return OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")


def test_the_keys_are_stored_encrypted_and_shown_only_as_set(org):
    run("--set", "pms=opendental", f"pms_developer_key={DEVELOPER}", f"pms_customer_key={CUSTOMER}",
        "pms_base_url=http://192.168.1.20:30223/api/v1", "pms_sync_time=04:30")  # fmt: skip
    connection = Connection.objects.get(organization=org)
    assert (
        DEVELOPER not in connection.developer_key_encrypted
        and CUSTOMER not in connection.customer_key_encrypted
    )
    assert connection.developer_key_encrypted.startswith("gAAAA")  # a Fernet token
    lines = run().splitlines()
    assert {"pms=opendental", "pms_developer_key=set", "pms_customer_key=set", "pms_sync_time=04:30",
            "pms_base_url=http://192.168.1.20:30223/api/v1"} <= set(lines)  # fmt: skip
    document = json.loads(run("--json"))
    assert (document["pms_developer_key"], document["pms_customer_key"]) == ("set", "set")
    everything = (
        run() + run("--json") + json.dumps(list(AuditEvent.objects.values_list("changes", flat=True)))
    )
    assert DEVELOPER not in everything and CUSTOMER not in everything
    client = opendental_client(connection)
    assert client._auth == f"ODFHIR {DEVELOPER}/{CUSTOMER}"  # what goes on the wire, decrypted only there


def test_set_keeps_the_stored_key_unset_clears_it_and_set_without_one_is_refused(org):
    run("--set", f"pms_developer_key={DEVELOPER}")
    token = Connection.objects.get(organization=org).developer_key_encrypted
    run("--set", "pms_developer_key=set")  # the printed line passed back changes nothing
    assert Connection.objects.get(organization=org).developer_key_encrypted == token
    run("--set", "pms_developer_key=unset")
    assert Connection.objects.get(organization=org).developer_key_encrypted == ""
    with pytest.raises(CommandError) as exc:
        run("--set", "pms_customer_key=set")
    assert exc.value.returncode == 2 and "give the key itself" in str(exc.value)


@pytest.mark.parametrize(
    ("assignment", "message"),
    [("pms=dentrix", "expected one of none, opendental"), ("pms_base_url=ftp://x", "http(s) URL"),
     ("pms_sync_time=25:00", "HH:MM"), ("pms_developer_key=has space", "as Open Dental issued it")],
)  # fmt: skip
def test_a_bad_value_exits_2_and_changes_nothing(org, assignment, message):
    with pytest.raises(CommandError) as exc:
        run("--set", "pms_sync_time=03:00", assignment)
    assert exc.value.returncode == 2 and message in str(exc.value)
    assert "pms_sync_time=05:00" in run().splitlines()


def test_without_the_fernet_key_no_key_is_stored_and_the_variable_is_named(org, settings):
    settings.PMS_KEYS_FERNET_KEY = ""
    with pytest.raises(CommandError) as exc:
        run("--set", f"pms_developer_key={DEVELOPER}")
    assert "PMS_KEYS_FERNET_KEY is not set" in str(exc.value)
    assert not Connection.objects.filter(organization=org).exclude(developer_key_encrypted="").exists()


def test_a_rotated_fernet_key_still_reads_the_stored_keys_when_the_old_one_follows(org, settings):
    run("--set", "pms=opendental", f"pms_developer_key={DEVELOPER}", f"pms_customer_key={CUSTOMER}")
    old = settings.PMS_KEYS_FERNET_KEY
    settings.PMS_KEYS_FERNET_KEY = f"{Fernet.generate_key().decode()},{old}"
    assert (
        opendental_client(Connection.objects.get(organization=org))._auth == f"ODFHIR {DEVELOPER}/{CUSTOMER}"
    )
    settings.PMS_KEYS_FERNET_KEY = Fernet.generate_key().decode()
    with pytest.raises(ValueError, match="cannot be decrypted with PMS_KEYS_FERNET_KEY"):
        opendental_client(Connection.objects.get(organization=org))


def test_the_printed_lines_set_back_give_the_same_values(org):
    run(
        "--set",
        "pms=opendental",
        f"pms_developer_key={DEVELOPER}",
        "pms_no_contact_billing_types=Collections,Bad Debt",
    )
    lines = [line for line in run().splitlines() if line.startswith("pms")]
    events = AuditEvent.objects.count()
    run(*[arg for line in lines for arg in ("--set", line)])
    assert [line for line in run().splitlines() if line.startswith("pms")] == lines
    assert AuditEvent.objects.count() == events
    assert "pms_no_contact_billing_types=Collections,Bad Debt" in lines


def test_connecting_to_open_dental_starts_posting_from_that_moment(org):
    run("--set", "pms=opendental")
    first = Connection.objects.get(organization=org).posting_starts_at
    assert first is not None
    run("--set", "pms=none")
    run("--set", "pms=opendental")
    assert Connection.objects.get(organization=org).posting_starts_at == first


def test_the_admin_shows_set_or_unset_never_the_key_and_stores_a_typed_key_encrypted(org):
    user = UserFactory.create(username="admin", is_superuser=True)
    client = Client()
    client.force_login(user)
    run("--set", "pms=opendental", f"pms_developer_key={DEVELOPER}")
    connection = Connection.objects.get(organization=org)
    url = reverse("admin:pms_connection_change", args=[connection.pk])
    page = client.get(url).content.decode()
    assert "developer key set, customer key unset" in page
    assert DEVELOPER not in page and connection.developer_key_encrypted not in page
    response = client.post(url, {"pms": "opendental", "base_url": "", "sync_time": "05:00",
                                 "no_contact_billing_types": '["Collections"]', "developer_key": "",
                                 "customer_key": CUSTOMER})  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    connection.refresh_from_db()
    assert connection.developer_key_encrypted  # an empty box keeps the stored key
    assert opendental_client(connection)._auth == f"ODFHIR {DEVELOPER}/{CUSTOMER}"
    audit = AuditEvent.objects.filter(action="admin.change").latest("id")
    assert audit.changes["customer_key"] == ["unset", "set (new key)"]
    assert CUSTOMER not in json.dumps(audit.changes)


def test_a_billing_manager_sees_the_connection_but_only_an_org_admin_changes_it(org):
    manager = MembershipFactory.create(organization=org, role=Role.BILLING_MANAGER).user
    run("--set", "pms=opendental")
    client = Client()
    client.force_login(manager)
    url = reverse("admin:pms_connection_change", args=[Connection.objects.get(organization=org).pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"pms": "none"}).status_code == 403
    other = OrganizationFactory.create(slug="elsewhere")
    run_other = Connection.objects.create(organization=other, pms=PmsKind.OPENDENTAL)
    assert client.get(reverse("admin:pms_connection_change", args=[run_other.pk])).status_code == 404


def test_each_organization_syncs_once_a_day_at_its_local_sync_time(org, monkeypatch):
    run("--set", "pms=opendental", "pms_sync_time=05:00")
    tokyo = OrganizationFactory.create(slug="tokyo", timezone="Asia/Tokyo")
    Connection.objects.create(organization=tokyo, pms=PmsKind.OPENDENTAL, sync_time=time(5, 0))
    OrganizationFactory.create(slug="no-pms")
    # 11:30 UTC is 04:30 in Denver and 20:30 in Tokyo.
    assert organizations_due_for_sync(now=datetime(2026, 11, 24, 11, 30, tzinfo=UTC)) == [tokyo.pk]
    assert organizations_due_for_sync(now=datetime(2026, 11, 24, 12, 5, tzinfo=UTC)) == [org.pk]
    assert organizations_due_for_sync(now=datetime(2026, 11, 24, 13, 0, tzinfo=UTC)) == []  # once a day
    queued: list[int] = []
    monkeypatch.setattr(tasks.sync_organization, "delay", queued.append)
    monkeypatch.setattr(tasks, "organizations_due_for_sync", lambda: [org.pk])
    assert tasks.sync_due_organizations() == 1 and queued == [org.pk]
    assert any(job.task == "pms.sync_due_organizations" and job.every_seconds for job in PERIODIC_TASKS)
