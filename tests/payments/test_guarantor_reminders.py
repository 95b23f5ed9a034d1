"""The guarantor page's "Reminders and notices" (issue 15: each held or skipped message names its reason, which
the guarantor page's explanation shows; SPEC §15 K6, D12): the engine's state of each owing bill, K6's hold with
the claims and the limit, and the latest dunning messages with their reasons, in a fixed number of queries.

The hold is the real engine's: feeds in the §3 document are imported and ``run_dunning``/``send_due`` run as in
tests/dunning/test_claims_hold.py (same preset: day 0 statement by text and email, day 10 reminder by text, day 15
due by text and email, day 30 final); texts reach the fake Twilio, email anymail's test backend.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from notifications.models import Kind, Message, Reason, State
from practices.importer import feed_import
from practices.models import Bill, Organization, Role
from tests.dunning.test_claims_at_send import run_only, send_due
from tests.dunning.test_claims_hold import STATEMENT_DAY, daytime, import_feed, org, run
from tests.factories import GuarantorFactory, MembershipFactory, feed_patient, feed_statement
from tests.notifications.test_feed_additions_messages import providers

pytestmark = pytest.mark.django_db
__all__ = ["org", "providers"]  # fixtures

HOLD = (
    "Held for insurance: 3 open claims, the organization allows at most 2 "
    '("Max open claims" in the payment settings).'
)
RESUME = "Reminders resume on their own at the first daily dunning run after the practice-management system"


@pytest.fixture
def staff(client, org: Organization):
    user = MembershipFactory.create(organization=org, role=Role.FRONT_DESK, user__username="frontdesk").user
    client.force_login(user)
    return client


def page(client, org: Organization, day: date, guarantor_id: str = "P1") -> str:
    """The guarantor page as the front desk reads it on ``day`` (tags dropped, spaces collapsed)."""
    with time_machine.travel(daytime(day), tick=False):
        response = client.get(reverse("payments_dashboard:guarantor", args=[org.slug, guarantor_id]))
    assert response.status_code == 200
    return section(response.content.decode())


def section(body: str) -> str:
    match = re.search(r'<section aria-labelledby="reminders-heading".*?</section>', body, re.S)
    assert match, "no Reminders and notices section"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(0))).split())


def test_a_claims_hold_names_the_claims_and_the_limit_and_lifts_once_the_feed_settles_them(
    staff, org, feed_bytes, providers
):
    import_feed(feed_bytes, STATEMENT_DAY, open_claims=1)  # within the limit of 2
    run(org, STATEMENT_DAY)
    import_feed(feed_bytes, date(2026, 11, 28), open_claims=3)  # two claims filed: 3 > 2
    day_10 = STATEMENT_DAY + timedelta(days=10)
    run(org, day_10)  # the day-10 reminder is held (claims_pending)

    held = page(staff, org, day_10)
    assert HOLD in held
    assert RESUME in held
    assert "only the latest missed step on each channel is sent" in held
    # The bill's row: amount, the hold with the step it held, the statement sent, the next step (day 15).
    assert (
        "S-1 $120.00 Held for insurance Reminder held Nov 30, 2026 Statement, Nov 20, 2026 "
        "Dec 5, 2026 (held too while the claims are over the limit)"
    ) in held
    assert "Statement SMS Sent" in held and "Statement Email Sent" in held

    settled = day_10 + timedelta(days=10)
    import_feed(feed_bytes, settled, open_claims=0)  # the claims were adjudicated
    run(org, settled)  # D2: the day-15 due notice goes on both channels, the reminder is superseded

    after = page(staff, org, settled)
    assert "Held for insurance" not in after and "claims" not in after
    assert "S-1 $120.00 Active Due, Dec 10, 2026 Dec 20, 2026" in after
    assert "Due SMS Sent" in after and "Due Email Sent" in after
    assert "Reminder SMS" not in after  # superseded: it never became a message


def test_the_claims_now_within_the_limit_say_the_hold_lifts_at_the_next_run(
    staff, org, feed_bytes, providers
):
    import_feed(feed_bytes, STATEMENT_DAY, open_claims=3)
    run(org, STATEMENT_DAY)
    import_feed(feed_bytes, STATEMENT_DAY + timedelta(days=2), open_claims=1)  # before the next run

    text = page(staff, org, STATEMENT_DAY + timedelta(days=2))
    assert "Insurance claims now within the limit: 1 open, at most 2 allowed." in text
    assert "resume at the next daily dunning run" in text
    assert "Held for insurance Statement held Nov 20, 2026" in text
    assert "none yet" in text  # nothing was sent


def test_a_message_cancelled_at_send_for_claims_shows_its_reason(staff, org, feed_bytes, providers):
    """tests/dunning/test_claims_at_send.py's case: the claims grew after the statement was queued."""
    import_feed(feed_bytes, STATEMENT_DAY, open_claims=1)
    run_only(org, STATEMENT_DAY)
    import_feed(feed_bytes, STATEMENT_DAY, open_claims=3)
    send_due(org, STATEMENT_DAY)
    assert set(Message.objects.values_list("state", "reason")) == {(State.CANCELLED, Reason.CLAIMS_PENDING)}

    text = page(staff, org, STATEMENT_DAY)
    reason = "Cancelled Waiting for insurance: open claims over the organization's limit"
    assert f"Statement SMS {reason}" in text and f"Statement Email {reason}" in text
    assert HOLD in text
    assert "Held for insurance Statement held Nov 20, 2026" in text


def test_payment_requests_and_other_guarantors_messages_are_not_listed(staff, org, feed_bytes, providers):
    import_feed(feed_bytes, STATEMENT_DAY, open_claims=0)
    run(org, STATEMENT_DAY)
    message = Message.objects.filter(channel="sms").get()
    Message.objects.create(
        organization=org, patient=message.patient, bill=message.bill, generation=1, kind=Kind.REQUEST,
        channel="sms", destination=message.destination, body="Your payment request", state=State.SENT,
    )  # fmt: skip
    # Another guarantor of the same practice with a statement text of their own (a copy of Ana's bill).
    other = GuarantorFactory.create(organization=org, external_id="P9", first_name="Omar", last_name="Reyes")
    assert message.bill_id is not None
    their_bill = Bill.objects.get(pk=message.bill_id)
    their_bill.pk, their_bill.bill_id, their_bill.guarantor, their_bill.patient = None, "S-OMAR", other, None
    their_bill.save()
    Message.objects.create(
        organization=org, patient=other, bill=their_bill, generation=1, kind=message.kind, channel="sms",
        destination="+18015550199", body="Omar's statement", state=State.UNDELIVERED,
    )  # fmt: skip
    assert "Omar" in page(staff, org, STATEMENT_DAY, "P9")  # shown on their own page
    text = page(staff, org, STATEMENT_DAY)
    assert "Payment request" not in text
    assert "S-OMAR" not in text and "Undelivered" not in text and "0199" not in text
    assert text.count(" Sent") == 2  # the statement by text and by email


def statements_feed(feed_bytes: Any, day: date, count: int) -> None:
    """Ana's ``count`` statements, S-1 to S-<count>, all of Nov 20, in the feed of ``day``."""
    at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=13)
    patient = feed_patient("P1", mobile_phone="+18015550100", email="p1@example.com", open_claims=0)
    statements = [
        feed_statement(f"S-{n}", "P1", statement_date=STATEMENT_DAY.isoformat(), due_date="2026-12-10",
                       amount_due="120.00", dunning_status="")
        for n in range(1, count + 1)
    ]  # fmt: skip
    with time_machine.travel(at, tick=False):
        summary = feed_import(
            raw=feed_bytes(generated_at=at.isoformat().replace("+00:00", "Z"), patients=[patient],
                           statements=statements)
        )  # fmt: skip
    assert summary.errors == []


def queries(client, org: Organization, day: date) -> int:
    with time_machine.travel(daytime(day), tick=False), CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("payments_dashboard:guarantor", args=[org.slug, "P1"]))
    assert response.status_code == 200
    return len(captured)


def test_the_section_costs_the_same_queries_for_one_bill_or_ten(staff, org, feed_bytes, providers):
    statements_feed(feed_bytes, STATEMENT_DAY, 1)
    run(org, STATEMENT_DAY)  # S-1's statement by text and email
    queries(staff, org, STATEMENT_DAY)  # warm: the session, content types
    one = queries(staff, org, STATEMENT_DAY)

    day = STATEMENT_DAY + timedelta(days=1)
    statements_feed(feed_bytes, day, 10)  # nine more, a day late: their statements go too
    run(org, day)
    assert Message.objects.count() == 20
    text = page(staff, org, day)
    assert all(f"S-{n} $120.00 Active Statement, " in text for n in range(1, 11))
    assert text.count("Statement SMS Sent") == 10
    assert queries(staff, org, day) == one
