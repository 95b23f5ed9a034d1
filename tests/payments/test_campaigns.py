"""Payment-request campaigns: B5 (what a request starts), B2 (bulk send, idempotent, deselection, races),
B4 (single request), Q1 (quiet hours in the recipient's zone), U1 (no destination), I6 and the §10 commands."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications import paylinks
from notifications.models import Kind, Message, Reason, State
from notifications.paylinks import PAY_URL, with_pay_url
from notifications.selectors import undeliverable_messages
from payments.campaigns import (
    REQUEST_STEP,
    CampaignExists,
    InCampaign,
    NotEligible,
    bulk_send,
    campaign_start,
    send_request,
)
from payments.links import hash_token
from payments.models import PaymentLink, PaymentRequest, PaymentSettings, RequestMode
from practices.importer import feed_import
from practices.models import AuditEvent, Bill, BillSource, BillState
from tests.concurrency import in_threads
from tests.factories import (
    AccountFactory,
    GuarantorFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    feed_patient,
    feed_statement,
)
from tests.payments.factories import SnoozeFactory

pytestmark = pytest.mark.django_db

DENVER = ZoneInfo("America/Denver")
NEW_YORK = ZoneInfo("America/New_York")
# 10:00 in Denver on Nov 24, 2026: outside quiet hours everywhere in the continental US.
AT = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
ON = date(2026, 11, 24)
TOKEN = re.compile(r"http://testserver/p/([A-Za-z0-9_-]+)/")


def guarantor(org, external_id: str, *, portion: str = "100.00", **fields: Any):
    fields.setdefault("email", f"{external_id.lower()}@example.com")
    fields.setdefault("mobile_phone", "+18015550100")
    fields.setdefault("last_visit_date", date(2026, 10, 1))
    patient = GuarantorFactory.create(organization=org, external_id=external_id, **fields)
    AccountFactory.create(guarantor=patient, bucket_0_30=Decimal(portion), total=Decimal(portion),
                   patient_portion=Decimal(portion))  # fmt: skip
    return patient


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")


def run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), err.getvalue()


# --- B5: what a request starts -----------------------------------------------------------------------------


def test_a_bulk_send_starts_one_request_campaign_per_eligible_guarantor(org):
    user = MembershipFactory.create(organization=org).user
    guarantor(org, "P1", portion="120.50")
    guarantor(org, "P2", portion="80.00")
    guarantor(org, "P3", on_payment_plan=True)  # R2: not on the list

    bills = bulk_send(organization=org, at=AT, user=user)

    assert [b.guarantor.external_id for b in bills] == ["P1", "P2"]
    assert Bill.objects.count() == 2
    p1 = Bill.objects.get(guarantor__external_id="P1")
    assert p1.source == BillSource.REQUEST
    assert p1.state == BillState.ACTIVE
    assert p1.amount_due == Decimal("120.50")
    assert p1.effective_created_date == ON
    assert p1.statement_date == ON
    assert p1.created_at == AT
    assert p1.generation == 1
    assert len(p1.bill_id) <= 64
    request = PaymentRequest.objects.get(bill=p1)
    assert (request.mode, request.request_date, request.requested_at, request.requested_by) == (
        RequestMode.BULK, ON, AT, user,
    )  # fmt: skip
    link = PaymentLink.objects.get(bill=p1)

    messages = {m.channel: m for m in Message.objects.filter(bill=p1)}
    assert set(messages) == {"sms", "email"}
    for message in messages.values():
        assert (message.kind, message.generation, message.step_key) == (Kind.REQUEST, 1, REQUEST_STEP)
        # The stored body holds the link's place, not its token (issue 11, T4); the link written in for the
        # provider carries a token that hashes to the stored link.
        assert TOKEN.search(message.body) is None
        assert PAY_URL in message.body
        found = TOKEN.search(with_pay_url(message.body, message.context))
        assert found is not None
        token = found.group(1)
        assert hash_token(token) == link.token_hash
        assert "$120.50" in message.body
        assert paylinks.pay_url(message.context) == f"http://testserver/p/{token}/"
        assert message.context["amount_due"] == "$120.50"
        assert message.context["due_date"] == "upon receipt"
        assert message.state == State.PENDING
        assert message.created_by == user
    assert messages["sms"].destination == "+18015550100"
    assert messages["email"].destination == "p1@example.com"
    assert "Smile Dental" in messages["email"].subject


def test_a_campaign_start_is_audited_with_who_and_when(org):
    user = MembershipFactory.create(organization=org).user
    patient = guarantor(org, "P1")
    bill = campaign_start(organization=org, guarantor=patient, mode=RequestMode.BULK, at=AT, user=user)
    event = AuditEvent.objects.get(action="payment_request.send")
    assert event.actor == user
    assert event.object_id == str(bill.pk)
    assert event.changes["requested_at"] == ["", AT.isoformat()]
    assert event.changes["mode"] == ["", "bulk"]


def test_only_the_organizations_request_channels_get_a_message(org):
    PaymentSettings.objects.create(organization=org, request_channels=["email"])
    guarantor(org, "P1")
    bulk_send(organization=org, at=AT)
    assert list(Message.objects.values_list("channel", flat=True)) == ["email"]


def test_the_amount_is_the_patient_portion_at_send_time(org):
    patient = guarantor(org, "P1", portion="100.00")
    patient.account.patient_portion = Decimal("42.00")
    patient.account.save()
    bill = campaign_start(organization=org, guarantor=patient, mode=RequestMode.BULK, at=AT)
    assert bill.amount_due == Decimal("42.00")


def test_the_start_date_is_the_organizations_date_of_the_send(org):
    guarantor(org, "P1")
    # 05:30 UTC on Nov 25 is still Nov 24 in Denver.
    [bill] = bulk_send(organization=org, at=datetime(2026, 11, 25, 5, 30, tzinfo=UTC))
    assert bill.effective_created_date == date(2026, 11, 24)
    assert PaymentRequest.objects.get(bill=bill).request_date == date(2026, 11, 24)


# --- B2: bulk send ------------------------------------------------------------------------------------------


def test_a_second_bulk_send_for_the_same_date_creates_nothing(org):
    guarantor(org, "P1")
    guarantor(org, "P2")
    assert len(bulk_send(organization=org, at=AT)) == 2
    assert bulk_send(organization=org, at=AT) == []
    assert bulk_send(organization=org, at=AT.replace(hour=22)) == []
    assert Bill.objects.count() == 2
    assert PaymentRequest.objects.count() == 2
    assert Message.objects.count() == 4


def test_excluded_guarantors_are_left_out(org):
    guarantor(org, "P1")
    guarantor(org, "P2")
    code, out, _ = run(
        "bulk_send", "--org", "smile-dental", "--exclude", "P1", "--at", AT.isoformat(), "--json"
    )
    assert code == 0
    assert [row["guarantor_id"] for row in json.loads(out)] == ["P2"]
    assert not Bill.objects.filter(guarantor__external_id="P1").exists()


def test_only_does_not_force_an_ineligible_guarantor(org):
    guarantor(org, "P1")
    guarantor(org, "P2")
    snoozed = guarantor(org, "P3")
    SnoozeFactory.create(guarantor=snoozed, until=date(2026, 12, 1))
    code, out, err = run(
        "bulk_send", "--org", "smile-dental", "--only", "P1,P3", "--at", AT.isoformat(), "--json"
    )
    assert code == 0
    assert [row["guarantor_id"] for row in json.loads(out)] == ["P1"]
    assert "P3" in err
    assert set(Bill.objects.values_list("guarantor__external_id", flat=True)) == {"P1"}


def test_a_second_campaign_start_for_one_guarantor_is_refused_by_the_database(org):
    patient = guarantor(org, "P1")
    campaign_start(organization=org, guarantor=patient, mode=RequestMode.BULK, at=AT)
    with pytest.raises(CampaignExists):
        campaign_start(organization=org, guarantor=patient, mode=RequestMode.SINGLE, at=AT)
    assert Bill.objects.filter(guarantor=patient, state=BillState.ACTIVE).count() == 1
    assert PaymentRequest.objects.count() == 1
    assert Message.objects.count() == 2


def test_bulk_send_costs_the_same_few_queries_per_guarantor(org):
    def queries(n: int) -> int:
        other = OrganizationFactory.create(timezone="America/Denver")
        for i in range(n):
            guarantor(other, f"Q{i}")
        with CaptureQueriesContext(connection) as ctx:
            assert len(bulk_send(organization=other, at=AT)) == n
        return len(ctx.captured_queries)

    one, two, five = queries(1), queries(2), queries(5)
    per_guarantor = two - one
    assert five - one == 4 * per_guarantor  # one eligibility query, not a query per candidate
    assert per_guarantor <= 10


# --- Q1, U1 -------------------------------------------------------------------------------------------------


def test_a_request_sent_in_the_recipients_quiet_hours_is_held_until_8_local(org):
    # 22:30 in New York is 20:30 in Denver: quiet for the recipient, not for the practice (Q1/Q3).
    guarantor(org, "P1", timezone="America/New_York", timezone_source="feed")
    at = datetime(2026, 11, 24, 22, 30, tzinfo=NEW_YORK)
    code, out, _ = run("bulk_send", "--org", "smile-dental", "--at", at.isoformat(), "--json")
    assert code == 0
    [row] = json.loads(out)
    release = datetime(2026, 11, 25, 8, 0, tzinfo=NEW_YORK)
    assert row["messages"] == [
        {"channel": "email", "state": "scheduled", "scheduled_for": release.astimezone(UTC).isoformat()},
        {"channel": "sms", "state": "scheduled", "scheduled_for": release.astimezone(UTC).isoformat()},
    ]
    assert set(Message.objects.values_list("scheduled_for", flat=True)) == {release}


def test_a_naive_at_is_read_in_the_organizations_zone(org):
    guarantor(org, "P1")  # no zone of its own: the organization's (Denver)
    code, out, _ = run("bulk_send", "--org", "smile-dental", "--at", "2026-11-24T22:30", "--json")
    assert code == 0
    [row] = json.loads(out)
    release = datetime(2026, 11, 25, 8, 0, tzinfo=DENVER).astimezone(UTC).isoformat()
    assert {m["scheduled_for"] for m in row["messages"]} == {release}
    assert {m["state"] for m in row["messages"]} == {"scheduled"}


def test_a_guarantor_without_contact_details_gets_undelivered_requests_on_the_u1_list(org):
    user = MembershipFactory.create(organization=org).user
    patient = guarantor(org, "P1", email="", mobile_phone="")
    [bill] = bulk_send(organization=org, at=AT)
    messages = Message.objects.filter(bill=bill)
    assert sorted(messages.values_list("channel", "state", "reason")) == [
        ("email", State.UNDELIVERED, Reason.NO_DESTINATION),
        ("sms", State.UNDELIVERED, Reason.NO_DESTINATION),
    ]
    assert set(undeliverable_messages(user=user)) == set(messages)
    assert all(m.patient == patient for m in messages)


# --- B4: single request -------------------------------------------------------------------------------------


def test_send_request_starts_a_single_campaign(org):
    guarantor(org, "P1")
    bill = send_request(organization=org, guarantor_id="P1", at=AT)
    assert bill.source == BillSource.REQUEST
    assert PaymentRequest.objects.get(bill=bill).mode == RequestMode.SINGLE
    assert Message.objects.filter(bill=bill).count() == 2


def test_send_request_refuses_an_ineligible_guarantor_naming_the_rules(org):
    guarantor(org, "P1", on_payment_plan=True)
    with pytest.raises(NotEligible) as caught:
        send_request(organization=org, guarantor_id="P1", at=AT)
    assert caught.value.rules == ["R2"]
    assert not Bill.objects.exists()


def test_send_request_twice_is_refused_the_second_time(org):
    guarantor(org, "P1")
    send_request(organization=org, guarantor_id="P1", at=AT)
    with pytest.raises(NotEligible) as caught:
        send_request(organization=org, guarantor_id="P1", at=AT)
    assert "R6" in caught.value.rules
    assert Bill.objects.count() == 1


def test_send_request_command_prints_one_object(org):
    guarantor(org, "P1")
    code, out, _ = run("send_request", "--org", "smile-dental", "--guarantor", "P1", "--at", AT.isoformat(),
                       "--json")  # fmt: skip
    assert code == 0
    document = json.loads(out)
    bill = Bill.objects.get()
    assert document == {
        "guarantor_id": "P1",
        "bill_id": bill.bill_id,
        "messages": [
            {"channel": "email", "state": "pending", "scheduled_for": AT.isoformat()},
            {"channel": "sms", "state": "pending", "scheduled_for": AT.isoformat()},
        ],
    }
    assert PaymentRequest.objects.get(bill=bill).mode == RequestMode.SINGLE


def test_send_request_command_exits_2_naming_the_failed_rules(org):
    guarantor(org, "P1", do_not_contact=True)
    code, out, err = run("send_request", "--org", "smile-dental", "--guarantor", "P1", "--at", AT.isoformat(),
                         "--json")  # fmt: skip
    assert code == 2
    assert out == ""
    assert "R11" in err
    assert not Bill.objects.exists()


def test_send_request_command_exits_2_for_an_unknown_guarantor(org):
    code, _, err = run("send_request", "--org", "smile-dental", "--guarantor", "NOPE", "--json")
    assert code == 2
    assert "NOPE" in err


# --- the bulk_send command's contract -----------------------------------------------------------------------


def test_bulk_send_json_shape(org):
    guarantor(org, "P2")
    guarantor(org, "P10")
    code, out, _ = run("bulk_send", "--org", "smile-dental", "--at", AT.isoformat(), "--json")
    assert code == 0
    rows = json.loads(out)
    bills = {b.guarantor.external_id: b.bill_id for b in Bill.objects.select_related("guarantor")}
    # Sorted by guarantor id (code point order: "P10" < "P2").
    assert rows == [
        {"guarantor_id": gid, "bill_id": bills[gid], "messages": [
            {"channel": "email", "state": "pending", "scheduled_for": AT.isoformat()},
            {"channel": "sms", "state": "pending", "scheduled_for": AT.isoformat()},
        ]}
        for gid in ("P10", "P2")
    ]  # fmt: skip


def test_bulk_send_with_nobody_eligible_prints_an_empty_array(org):
    code, out, _ = run("bulk_send", "--org", "smile-dental", "--at", AT.isoformat(), "--json")
    assert (code, json.loads(out)) == (0, [])


@pytest.mark.parametrize(
    "args",
    [
        ["--at", "tomorrow"],
        ["--at", "2026-11-24"],
        ["--at", "20261124T2230"],
        ["--at", "2026-13-24T10:00"],
        ["--only", " , "],
        ["--exclude", ""],
    ],
)
def test_bulk_send_bad_input_exits_2(org, args):
    guarantor(org, "P1")
    code, out, _ = run("bulk_send", "--org", "smile-dental", *args, "--json")
    assert (code, out) == (2, "")
    assert not Bill.objects.exists()


def test_bulk_send_unknown_organization_exits_2():
    code, _, err = run("bulk_send", "--org", "nope", "--json")
    assert code == 2
    assert "nope" in err


# --- I6 -----------------------------------------------------------------------------------------------------


def test_a_feed_dropping_the_balance_to_zero_closes_the_request_campaign_paid(org, feed_bytes):
    feed_import(raw=feed_bytes(generated_at="2026-11-24T06:00:00Z", patients=[feed_patient("P1")]))
    [bill] = bulk_send(organization=org, at=AT)
    assert bill.amount_due == Decimal("100.00")  # 120.00 less the 20.00 insurance estimate

    lower = {"0_30": "70.00", "31_60": "0", "61_90": "0", "over_90": "0", "insurance_estimate": "20.00"}
    feed_import(
        raw=feed_bytes(generated_at="2026-11-25T06:00:00Z", patients=[feed_patient("P1", balance=lower)])
    )
    bill.refresh_from_db()
    assert (bill.state, bill.amount_due) == (BillState.ACTIVE, Decimal("50.00"))

    zero = {"0_30": "0", "31_60": "0", "61_90": "0", "over_90": "0", "insurance_estimate": "0"}
    feed_import(
        raw=feed_bytes(generated_at="2026-11-26T06:00:00Z", patients=[feed_patient("P1", balance=zero)])
    )
    bill.refresh_from_db()
    assert bill.state == BillState.PAID
    assert bill.ended_at == datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


# --- B2 under concurrency (PostgreSQL) ---------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_campaign_starts_for_one_guarantor_make_one_campaign(monkeypatch):
    monkeypatch.setattr("notifications.outbox._enqueue", lambda ids: None)  # no broker in this test
    organization = OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    patient = guarantor(organization, "P1")
    user = UserFactory.create()

    def start():
        return campaign_start(organization=organization, guarantor=patient, mode=RequestMode.BULK, at=AT,
                              user=user)  # fmt: skip

    results = in_threads(start, start)
    started = [r for r in results if isinstance(r, Bill)]
    refused = [r for r in results if isinstance(r, CampaignExists)]
    assert (len(started), len(refused)) == (1, 1), results
    assert Bill.objects.filter(guarantor=patient, state=BillState.ACTIVE).count() == 1
    assert PaymentRequest.objects.count() == 1
    assert PaymentLink.objects.count() == 1
    assert Message.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_bulk_sends_start_each_campaign_once(monkeypatch):
    monkeypatch.setattr("notifications.outbox._enqueue", lambda ids: None)
    organization = OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    for i in range(20):
        guarantor(organization, f"P{i:02d}")

    results = in_threads(lambda: bulk_send(organization=organization, at=AT),
                          lambda: bulk_send(organization=organization, at=AT))  # fmt: skip
    assert not any(isinstance(r, Exception) for r in results), results
    assert sum(len(r) for r in results) == 20
    assert Bill.objects.filter(state=BillState.ACTIVE).count() == 20
    assert Message.objects.count() == 40


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_campaign_start_waits_for_an_import_and_sees_its_statement(monkeypatch, feed_bytes):
    """R6 at write time: an import that opens a statement campaign for the guarantor while a request is being
    started ends with one active campaign, not two (the importer holds the organization's row)."""
    import threading
    import time

    from practices.importer import service

    monkeypatch.setattr("notifications.outbox._enqueue", lambda ids: None)
    organization = OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    patient = guarantor(organization, "P1")
    written = threading.Event()
    hooks = service.run_post_import_hooks

    def hold_after_writing(org, generated_at):
        hooks(org, generated_at)
        written.set()  # the statement is written, the transaction (and the organization's row) still held
        time.sleep(1)

    monkeypatch.setattr(service, "run_post_import_hooks", hold_after_writing)
    feed = feed_bytes(patients=[feed_patient("P1")], statements=[feed_statement("S-1", "P1")])

    def start():
        assert written.wait(30)
        return campaign_start(organization=organization, guarantor=patient, mode=RequestMode.BULK, at=AT)

    imported, started = in_threads(lambda: feed_import(raw=feed, organization_slug="smile-dental"), start)
    assert not isinstance(imported, Exception), imported
    assert isinstance(started, InCampaign), started
    active = Bill.objects.filter(guarantor=patient, state=BillState.ACTIVE)
    assert list(active.values_list("source", flat=True)) == [BillSource.STATEMENT]
    assert not PaymentRequest.objects.exists()
