"""K6 (SPEC §15): the insurance-aware hold, from the feed to what reaches the fake Twilio.

A guarantor whose open insurance claims exceed the organization's ``max_open_claims`` gets no dunning message:
each step that falls due is decided ``skip``/``claims_pending`` on its day, once, and is not consumed; when a
later feed shows the claims settled the steps fall due again and D2's catch-up sends the latest due step of
each channel (the earlier ones ``superseded``). Feeds are the §3 document (``open_claims`` on the guarantor);
texts are read back from the fake Twilio, which answers as Twilio's Messages API documents
(https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource, tests/fakes/twilio_server.py);
email from anymail's test backend (https://anymail.dev/en/stable/tips/testing/).

The preset is the test's own, so that every outcome is counted by hand: day 0 statement by text and email,
day 10 reminder by text, day 15 due by text and email, day 30 final by text and email.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command

from dunning.models import DunningDecision, DunningSettings, Preset, PresetStep
from notifications.models import Message
from payments.models import PaymentSettings
from practices.importer import feed_import
from practices.models import Bill, BillState, Organization
from tests.factories import OrganizationFactory, feed_patient, feed_statement
from tests.notifications.test_feed_additions_messages import providers

pytestmark = pytest.mark.django_db
__all__ = ["providers"]  # fixture

STATEMENT_DAY = date(2026, 11, 20)
STEPS = [
    (0, "statement", "sms"), (0, "statement", "email"), (10, "reminder", "sms"), (15, "due", "sms"),
    (15, "due", "email"), (30, "final", "sms"), (30, "final", "email"),
]  # fmt: skip


def daytime(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=18)  # 11:00 in Denver


@pytest.fixture
def org() -> Organization:
    org = OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver",
                                     phone="+18015550199")  # fmt: skip
    preset = Preset.objects.create(slug="k6-test", name="K6 test", cycle_days=30, paper_cycle_days=30)
    for age, kind, channel in STEPS:
        PresetStep.objects.create(preset=preset, bill_age_days=age, kind=kind, channel=channel)
    DunningSettings.objects.update_or_create(organization=org, defaults={"preset": preset})
    PaymentSettings.objects.update_or_create(organization=org, defaults={"max_open_claims": 2})
    return org


def import_feed(feed_bytes: Any, day: date, open_claims: int) -> None:
    """The PMS's feed of ``day`` (06:00 Denver): Ana with ``open_claims`` claims and her one statement."""
    at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=13)
    patient = feed_patient("P1", mobile_phone="+18015550100", email="p1@example.com", open_claims=open_claims)
    statement = feed_statement("S-1", "P1", statement_date=STATEMENT_DAY.isoformat(), due_date="2026-12-10",
                               amount_due="120.00", dunning_status="")  # fmt: skip
    generated_at = at.isoformat().replace("+00:00", "Z")
    with time_machine.travel(at, tick=False):
        summary = feed_import(
            raw=feed_bytes(generated_at=generated_at, patients=[patient], statements=[statement])
        )
    assert summary.errors == []


def run(org: Organization, day: date) -> list[dict[str, Any]]:
    """``run_dunning --json`` for ``day``, then the outbox tick (``send_due``), at 11:00 in Denver."""
    out = io.StringIO()
    with time_machine.travel(daytime(day), tick=False):
        call_command("run_dunning", "--org", org.slug, "--date", day.isoformat(), "--json", stdout=out)
        call_command("send_due", "--org", org.slug, "--json", stdout=io.StringIO())
    return json.loads(out.getvalue())


def decisions(rows: list[dict[str, Any]]) -> list[tuple[int, str, str, str, str]]:
    return [(r["step_age_days"], r["kind"], r["channel"], r["action"], r["reason"]) for r in rows]


def test_steps_wait_while_claims_are_pending_and_the_latest_goes_once_they_settle(org, feed_bytes, providers):
    import_feed(feed_bytes, STATEMENT_DAY, open_claims=1)  # within the limit of 2
    assert decisions(run(org, STATEMENT_DAY)) == [
        (0, "statement", "email", "send", ""), (0, "statement", "sms", "send", ""),
    ]  # fmt: skip
    assert len(providers.accepted()) == 1 and len(mail.outbox) == 1

    import_feed(feed_bytes, date(2026, 11, 28), open_claims=3)  # two new claims filed: 3 > 2
    day_10 = STATEMENT_DAY + timedelta(days=10)
    assert decisions(run(org, day_10)) == [(10, "reminder", "sms", "skip", "claims_pending")]
    assert Message.objects.count() == 2  # the statement's two; nothing new in the outbox
    assert len(providers.accepted()) == 1 and len(mail.outbox) == 1
    assert run(org, day_10) == []  # running twice for one date decides nothing the second time

    for offset in range(11, 20):  # the daily runs until the next feed: the day-15 steps are held on their day
        rows = decisions(run(org, STATEMENT_DAY + timedelta(days=offset)))
        expected = (
            [(15, "due", "email", "skip", "claims_pending"), (15, "due", "sms", "skip", "claims_pending")]
            if offset == 15
            else []
        )
        assert rows == expected, offset
    assert len(providers.accepted()) == 1 and len(mail.outbox) == 1

    settled = day_10 + timedelta(days=10)  # a feed 10 days later: the claims were adjudicated
    import_feed(feed_bytes, settled, open_claims=0)
    assert decisions(run(org, settled)) == [
        (10, "reminder", "sms", "skip", "superseded"), (15, "due", "email", "send", ""),
        (15, "due", "sms", "send", ""),
    ]  # fmt: skip
    texts = providers.accepted()
    assert [m["To"] for m in texts] == ["+18015550100", "+18015550100"]
    assert "Smile Dental" in texts[1]["Body"] and texts[1]["Body"] != texts[0]["Body"]
    assert [m.to for m in mail.outbox] == [["p1@example.com"], ["p1@example.com"]]
    assert run(org, settled) == []

    bill = Bill.objects.get()
    assert (bill.state, bill.claims_held, bill.next_dunning_date) == (
        BillState.ACTIVE,
        False,
        STATEMENT_DAY + timedelta(days=30),
    )
    trail = sorted(
        DunningDecision.objects.values_list("step_age_days", "channel", "action", "reason", "run_date")
    )
    assert trail == sorted([
        (0, "email", "send", "", STATEMENT_DAY), (0, "sms", "send", "", STATEMENT_DAY),
        (10, "sms", "skip", "claims_pending", day_10), (15, "email", "skip", "claims_pending", date(2026, 12, 5)),
        (15, "sms", "skip", "claims_pending", date(2026, 12, 5)), (10, "sms", "skip", "superseded", settled),
        (15, "email", "send", "", settled), (15, "sms", "send", "", settled),
    ])  # fmt: skip


def test_without_a_limit_open_claims_do_not_hold_dunning(org, feed_bytes, providers):
    PaymentSettings.objects.filter(organization=org).update(max_open_claims=None)
    import_feed(feed_bytes, STATEMENT_DAY, open_claims=40)
    run(org, STATEMENT_DAY)
    assert decisions(run(org, STATEMENT_DAY + timedelta(days=10))) == [(10, "reminder", "sms", "send", "")]
    assert len(providers.accepted()) == 2
    assert not Bill.objects.get().claims_held


def test_claims_at_the_limit_do_not_hold_dunning(org, feed_bytes, providers):
    import_feed(feed_bytes, STATEMENT_DAY, open_claims=2)
    assert [r["action"] for r in run(org, STATEMENT_DAY)] == ["send", "send"]
    assert len(providers.accepted()) == 1


def test_raising_the_limit_releases_the_held_steps_at_the_next_run(org, feed_bytes, providers):
    """No feed needed: the run releases the held bills whose claims are within the limit it reads now."""
    import_feed(feed_bytes, STATEMENT_DAY, open_claims=3)
    assert decisions(run(org, STATEMENT_DAY)) == [
        (0, "statement", "email", "skip", "claims_pending"), (0, "statement", "sms", "skip", "claims_pending"),
    ]  # fmt: skip
    assert run(org, STATEMENT_DAY + timedelta(days=1)) == []
    PaymentSettings.objects.filter(organization=org).update(max_open_claims=5)
    assert decisions(run(org, STATEMENT_DAY + timedelta(days=2))) == [
        (0, "statement", "email", "send", ""), (0, "statement", "sms", "send", ""),
    ]  # fmt: skip
    assert len(providers.accepted()) == 1 and len(mail.outbox) == 1


def test_a_bill_held_past_its_last_step_is_not_completed_and_sends_its_final_notice_once_settled(
    org, feed_bytes, providers
):
    """A late import with every step due: the bill is held, not completed (D11), and waits for the claims
    however many days pass; then D2 sends the final notice alone on each channel."""
    import_feed(feed_bytes, STATEMENT_DAY + timedelta(days=35), open_claims=3)
    day = STATEMENT_DAY + timedelta(days=35)
    assert {r["reason"] for r in run(org, day)} == {"claims_pending"}
    bill = Bill.objects.get()
    assert (bill.state, bill.claims_held) == (BillState.ACTIVE, True)
    assert run(org, day + timedelta(days=20)) == []
    import_feed(feed_bytes, day + timedelta(days=21), open_claims=0)
    rows = decisions(run(org, day + timedelta(days=21)))
    assert [r for r in rows if r[3] == "send"] == [
        (30, "final", "email", "send", ""),
        (30, "final", "sms", "send", ""),
    ]
    assert {r[4] for r in rows if r[3] == "skip"} == {"superseded"}
    assert len(providers.accepted()) == 1 and len(mail.outbox) == 1
    assert Bill.objects.get().state == BillState.COMPLETED


def test_a_dry_run_decides_the_release_and_writes_nothing(org, feed_bytes, providers):
    import_feed(feed_bytes, STATEMENT_DAY, open_claims=3)
    run(org, STATEMENT_DAY)
    import_feed(feed_bytes, STATEMENT_DAY + timedelta(days=3), open_claims=0)
    out = io.StringIO()
    day = STATEMENT_DAY + timedelta(days=3)
    with time_machine.travel(daytime(day), tick=False):
        call_command(
            "run_dunning", "--org", org.slug, "--date", day.isoformat(), "--dry-run", "--json", stdout=out
        )
    assert [r["action"] for r in json.loads(out.getvalue())] == ["send", "send"]
    bill = Bill.objects.get()
    assert (bill.claims_held, bill.next_dunning_date) == (True, STATEMENT_DAY + timedelta(days=10))
    assert Message.objects.count() == 0
