"""C1: ``sync_pms`` against the fake Open Dental: the office's families arrive through the importer (every
I-rule holds, the feed is kept with its source), a sync that cannot read everything imports nothing and says
why, incremental syncs ask only for what changed (DateTStamp), and a full one happens at least weekly.

Shapes: the example responses of https://www.opendental.com/site/apipatients.html, apiaccountmodules.html,
apistatements.html, apipayplans.html, apiclaims.html and apiappointments.html, built by the fake."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from pms.models import Connection
from pms.opendental.client import OpenDentalClient
from pms.services import pms_sync
from practices.models import Account, Bill, BillState, FeedImport, FeedSource, FeedStatus, Patient
from tests.factories import OrganizationFactory
from tests.fakes.opendental_server import FakeOpenDental, populate
from tests.pms.conftest import SYNC_AT

pytestmark = pytest.mark.django_db


def sync_command(*args: str) -> tuple[int, dict]:
    out = StringIO()
    try:
        call_command("sync_pms", "--org", "smile-dental", "--json", *args, stdout=out, stderr=StringIO())
        code = 0
    except CommandError as exc:
        code = exc.returncode
    return code, json.loads(out.getvalue())


def office(fake: FakeOpenDental) -> dict[str, int]:
    """Two families: the Smiths owe (a statement, a claim, visits), the Lees owe nothing."""
    smith = fake.add_family(
        LName="Smith", aging={"Bal_0_30": 100.0, "Bal_31_60": 49.0, "BalOver90": 0.1 + 0.2, "InsEst": 20.0, "InsWoEst": 5.0},
        dependents=2, TxtMsgOk="No", Birthdate="0001-01-01",
    )  # fmt: skip
    lee = fake.add_family(LName="Lee", FName="Wei", WirelessPhone="(801)555-0123")
    fake.add_statement(smith["PatNum"], BalTotal=149.3, InsEst=20.0, Mode_="Email", DateSent="2026-11-20")
    fake.add_claim(smith["PatNum"] + 1, ClaimStatus="W")
    fake.add_claim(smith["PatNum"] + 2, ClaimStatus="R")  # received: adjudicated
    fake.add_appointment(smith["PatNum"] + 2, "2026-10-05 09:30:00")
    fake.advance(minutes=5)
    return {"smith": smith["PatNum"], "lee": lee["PatNum"]}


def test_sync_pms_imports_the_office_through_the_importer(fake, org):
    ids = office(fake)
    code, summary = sync_command()
    assert code == 0, summary
    assert (summary["applied"], summary["rejected"], summary["errors"]) == (
        5,
        0,
        [],
    )  # 4 patients + 1 statement
    assert set(summary) >= {"applied", "rejected", "errors", "warnings"} and summary["full"] is True

    smith = Patient.objects.get(organization=org, external_id=str(ids["smith"]))
    account = Account.objects.get(guarantor=smith)
    assert (account.bucket_0_30, account.bucket_31_60, account.bucket_over_90) == (
        Decimal("100.00"), Decimal("49.00"), Decimal("0.30"),
    )  # fmt: skip
    assert (account.insurance_estimate, account.patient_portion) == (Decimal("20.00"), Decimal("129.30"))
    assert smith.pms_sms_opt_out is True and smith.date_of_birth is None
    assert smith.open_claims == 1 and str(smith.last_visit_date) == "2026-10-05"
    assert Patient.objects.filter(organization=org, guarantor=smith).count() == 3
    lee = Account.objects.get(guarantor__external_id=str(ids["lee"]))
    assert lee.total == 0
    bill = Bill.objects.get(organization=org, bill_id=f"OD-{ids['smith']}")
    assert (bill.amount_due, str(bill.statement_date), bill.state) == (
        Decimal("129.30"),
        "2026-11-20",
        BillState.ACTIVE,
    )

    feed = FeedImport.objects.get(organization=org)
    assert (feed.source, feed.status) == (FeedSource.OPENDENTAL, FeedStatus.APPLIED)
    kept = json.loads(feed.raw)  # kept as received (I3), so it can be audited and replayed
    assert kept["organization"] == "smile-dental" and len(kept["patients"]) == 4
    connection = Connection.objects.get(organization=org)
    assert (connection.last_sync_status, connection.last_sync_feed_id) == (FeedStatus.APPLIED, feed.pk)


def test_the_fake_received_what_open_dental_documents(fake, org):
    ids = office(fake)
    pms_sync(organization=org, now=SYNC_AT)
    paths = [(r.method, r.path, r.params) for r in fake.requests]
    assert ("GET", "/patients/Simple", {}) in paths
    # Every family's aging from the A/R aging report, calculated now; the payment plans of the family with a
    # patient portion. The Lees owe nothing: nothing is asked of them.
    assert ("GET", "/reports/Aging", {}) in paths and not [
        p for p in paths if p[1].startswith("/accountmodules")
    ]
    assert ("GET", "/payplans", {"Guarantor": str(ids["smith"])}) in paths
    assert not [p for p in paths if str(ids["lee"]) in p[1] or p[2].get("Guarantor") == str(ids["lee"])]
    assert {p[2]["ClaimStatus"] for p in paths if p[1] == "/claims"} == {"U", "H", "W", "S", "I"}
    assert ("GET", "/statements", {}) in paths
    assert (
        "GET",
        "/appointments",
        {"AptStatus": "Complete", "dateStart": "2024-11-24", "dateEnd": "2026-11-24"},
    ) in paths
    assert {r.authorization for r in fake.requests} == {f"ODFHIR {fake.developer_key}/{fake.customer_key}"}


def test_a_pms_that_refuses_the_keys_imports_nothing_and_names_the_keys(fake, org):
    office(fake)
    fake.customer_key = "rotated-by-the-office"
    code, summary = sync_command()
    assert code == 1
    assert "pms_developer_key and pms_customer_key" in summary["errors"][0]["message"]
    assert not Patient.objects.filter(organization=org).exists()
    feed = FeedImport.objects.get(organization=org)
    assert (feed.status, feed.source, feed.applied_count) == (FeedStatus.FAILED, FeedSource.OPENDENTAL, 0)


def test_a_pms_that_stops_answering_mid_sync_imports_nothing_and_the_next_sync_starts_over(
    fake, org, monkeypatch
):
    populate(fake, patients=150)
    fake.advance(minutes=5)
    monkeypatch.setattr(
        OpenDentalClient, "_pause", lambda self, *args: None
    )  # no real waiting in the retries
    fake.die_after(5)  # the eConnector goes away after the first pages of patients
    first = pms_sync(organization=org, now=SYNC_AT)
    assert first.summary.status == FeedStatus.FAILED and first.exit_code == 1
    assert "no answer" in first.summary.reason
    assert not Patient.objects.filter(organization=org).exists()
    assert Connection.objects.get(organization=org).change_stamp == ""

    fake.die_after(None)
    second = pms_sync(organization=org, now=SYNC_AT + timedelta(hours=1))
    assert second.full and second.summary.status == FeedStatus.APPLIED
    assert Patient.objects.filter(organization=org).count() == 150


def test_a_throttled_sync_waits_as_told_and_completes(fake, org):
    office(fake)
    fake.fail_next(status=429, retry_after="3", path="/statements")
    slept: list[float] = []
    client = OpenDentalClient(base_url=fake.base_url, developer_key=fake.developer_key,
                              customer_key=fake.customer_key, sleep=slept.append)  # fmt: skip
    result = pms_sync(organization=org, now=SYNC_AT, client=client)
    assert result.summary.status == FeedStatus.APPLIED and slept == [3.0]


def test_an_incremental_sync_asks_only_for_what_changed(fake, org):
    ids = office(fake)
    pms_sync(organization=org, now=SYNC_AT)
    stamp = Connection.objects.get(organization=org).change_stamp
    assert stamp == "2026-11-24 05:04:59"  # a second before the serverDateTime of the first answer

    fake.advance(hours=2)
    fake.requests.clear()
    fake.update_patient(ids["lee"] + 0, Email="wei.lee@example.com")
    result = pms_sync(organization=org, now=SYNC_AT + timedelta(hours=2))
    assert result.full is False and result.summary.status == FeedStatus.APPLIED
    assert fake.received("GET", "/patients/Simple")[0].params == {"DateTStamp": stamp}
    assert ("/appointments", {"AptStatus": "Complete", "DateTStamp": stamp}) in [
        (r.path, r.params) for r in fake.requests
    ]
    # Only the changed family's aging was asked for, and the feed holds only it.
    assert [r.path for r in fake.received("GET", "/accountmodules")] == [
        f"/accountmodules/{ids['lee']}/Aging"
    ]
    kept = json.loads(FeedImport.objects.filter(organization=org).latest("id").raw)
    assert [p["id"] for p in kept["patients"]] == [str(ids["lee"])]
    assert Patient.objects.get(external_id=str(ids["lee"])).email == "wei.lee@example.com"
    assert Patient.objects.filter(organization=org).count() == 4  # nobody else was touched or lost


def test_an_incremental_sync_follows_a_new_statement_and_a_payment_at_the_front_desk(fake, org):
    ids = office(fake)
    pms_sync(organization=org, now=SYNC_AT)
    fake.advance(days=1)
    # The family paid 29.30 at the desk (Open Dental re-ages the family) and was sent a new statement.
    fake.set_aging(ids["smith"], Bal_0_30=100.0, InsEst=20.0)
    fake.add_statement(ids["smith"], BalTotal=100.0, InsEst=20.0, Mode_="Mail", DateSent="2026-11-25")
    fake.advance(minutes=1)
    result = pms_sync(organization=org, now=SYNC_AT + timedelta(days=1))
    assert not result.full and result.summary.status == FeedStatus.APPLIED
    bill = Bill.objects.get(bill_id=f"OD-{ids['smith']}")
    assert (bill.amount_due, str(bill.statement_date)) == (Decimal("80.00"), "2026-11-25")
    assert Account.objects.get(guarantor__external_id=str(ids["smith"])).patient_portion == Decimal("80.00")


def test_a_claim_adjudicated_since_is_seen_without_any_patient_change(fake, org):
    ids = office(fake)
    pms_sync(organization=org, now=SYNC_AT)
    assert Patient.objects.get(external_id=str(ids["smith"])).open_claims == 1
    fake.advance(hours=3)
    for claim in fake.office.claims:
        claim["ClaimStatus"] = "R"
    pms_sync(organization=org, now=SYNC_AT + timedelta(hours=3))
    assert Patient.objects.get(external_id=str(ids["smith"])).open_claims == 0


def test_a_full_sync_happens_at_least_weekly(fake, org):
    office(fake)
    pms_sync(organization=org, now=SYNC_AT)
    fake.advance(days=6)
    assert pms_sync(organization=org, now=SYNC_AT + timedelta(days=6)).full is False
    fake.advance(days=1)
    assert pms_sync(organization=org, now=SYNC_AT + timedelta(days=7)).full is True
    assert pms_sync(organization=org, now=SYNC_AT + timedelta(days=7, hours=1), full=True).full is True


def test_an_open_payment_plan_puts_the_family_on_a_plan_and_closes_its_campaign(fake, org):
    ids = office(fake)
    pms_sync(organization=org, now=SYNC_AT)
    assert Bill.objects.get(bill_id=f"OD-{ids['smith']}").state == BillState.ACTIVE
    fake.add_payplan(ids["smith"])
    fake.update_patient(ids["smith"])  # Open Dental re-ages the family when the plan is made
    fake.advance(minutes=1)
    pms_sync(organization=org, now=SYNC_AT + timedelta(hours=1))
    assert Patient.objects.get(external_id=str(ids["smith"])).on_payment_plan is True
    assert Bill.objects.get(bill_id=f"OD-{ids['smith']}").state == BillState.CLOSED  # I6


def test_deceased_and_collections_families_are_do_not_contact(fake, org):
    gone = fake.add_family(PatStatus="Deceased")
    sent = fake.add_family(BillingType="Sent to Collections")
    fake.add_family(PatStatus="Deleted")
    fake.advance(minutes=1)
    pms_sync(organization=org, now=SYNC_AT)
    flags = dict(Patient.objects.filter(organization=org).values_list("external_id", "do_not_contact"))
    assert flags == {
        str(gone["PatNum"]): True,
        str(sent["PatNum"]): True,
    }  # the deleted patient is not mirrored


def test_a_few_hundred_patients_in_families_import_with_only_the_unusable_rejected(fake, org):
    families = populate(fake, patients=400)
    # What no repair can save (I2): a patient with no name at all, and a dependent whose guarantor was
    # deleted in Open Dental (so is in no feed and not known here).
    nameless = fake.add_patient(LName="", FName="")
    orphan = fake.add_patient(guarantor=fake.add_patient(PatStatus="Deleted")["PatNum"], FName="Kid")
    fake.advance(minutes=5)
    code, summary = sync_command()
    assert code == 3, summary["errors"][:5]
    rejected = {(e["pointer"].rsplit("/", 1)[-1], e["message"]) for e in summary["errors"]}
    assert rejected == {("last_name", "is required"),
                        ("guarantor_id", f"guarantor '{orphan['Guarantor']}' is not in the feed and not already known")}  # fmt: skip
    assert not Patient.objects.filter(
        external_id__in=[str(nameless["PatNum"]), str(orphan["PatNum"])]
    ).exists()
    assert Patient.objects.filter(organization=org).count() == 400
    assert Patient.objects.filter(organization=org, is_guarantor=True).count() == families
    # The office's quirks are read, not lost: 0001-01-01 birthdates are no birthdate, states in full and ZIPs
    # without their zero are repaired (warnings), doubles are cents.
    assert Patient.objects.filter(organization=org, is_guarantor=True, date_of_birth__isnull=True).exists()
    assert Patient.objects.filter(organization=org, address_zip="02108", address_state="MA").exists()
    print(
        f"applied {summary['applied']}, rejected {summary['rejected']}, warnings {len(summary['warnings'])}"
    )
    for warning in summary["warnings"]:
        print("  ", warning["pointer"], warning["message"])


def test_an_organization_without_a_connector_is_told_so(db):
    OrganizationFactory.create(slug="smile-dental")
    code, summary = sync_command()
    assert code == 2 and "no PMS connector" in summary["errors"][0]["message"]


def test_keys_not_set_fail_the_sync_with_their_names(fake):
    organization = OrganizationFactory.create(slug="smile-dental")
    from practices.org_settings import org_settings_update

    org_settings_update(
        organization=organization, assignments=["pms=opendental", f"pms_base_url={fake.base_url}"]
    )
    code, summary = sync_command()
    assert code == 1
    assert "pms_developer_key and pms_customer_key are not set" in summary["errors"][0]["message"]
    assert fake.requests == []


def test_a_family_gone_between_the_list_and_its_aging_is_left_out_whole(fake, org):
    ids = office(fake)
    fake.fail_next(status=404, path="/payplans")  # the Smiths were merged away in Open Dental meanwhile
    result = pms_sync(organization=org, now=SYNC_AT)
    assert result.summary.status == FeedStatus.APPLIED
    mirrored = set(Patient.objects.filter(organization=org).values_list("external_id", flat=True))
    assert mirrored == {str(ids["lee"])}
