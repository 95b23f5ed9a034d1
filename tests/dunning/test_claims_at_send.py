"""K6 at send (SPEC §15 K6, "every rule is enforced at release time in the outbox and checked again at send"):
a dunning message queued while the guarantor's claims were within ``max_open_claims`` does not leave once a feed
shows them over it; its step goes back to the engine's claims hold and is caught up (D2) when they settle.

Feeds are the §3 document; texts are read back from the fake Twilio, which answers as Twilio's Messages API
documents (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource,
tests/fakes/twilio_server.py); email from anymail's test backend (https://anymail.dev/en/stable/tips/testing/).
"""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command

from dunning.models import DunningDecision
from notifications.models import Message, Reason, State
from notifications.outbox import messages_send
from practices.models import Bill, Organization
from tests.dunning.test_claims_hold import STATEMENT_DAY, daytime, decisions, import_feed, org
from tests.notifications.test_feed_additions_messages import providers

pytestmark = pytest.mark.django_db
__all__ = ["org", "providers"]  # fixtures


def run_only(org: Organization, day: date) -> list[dict[str, Any]]:
    """``run_dunning --json`` for ``day`` at 11:00 in Denver, without the outbox tick."""
    out = io.StringIO()
    with time_machine.travel(daytime(day), tick=False):
        call_command("run_dunning", "--org", org.slug, "--date", day.isoformat(), "--json", stdout=out)
    return json.loads(out.getvalue())


def send_due(org: Organization, day: date) -> None:
    with time_machine.travel(daytime(day), tick=False):
        call_command("send_due", "--org", org.slug, "--json", stdout=io.StringIO())


def test_queued_statement_is_cancelled_when_claims_grow_and_caught_up_once_they_settle(
    org, feed_bytes, providers
):
    import_feed(feed_bytes, STATEMENT_DAY, open_claims=1)  # within the limit of 2
    assert decisions(run_only(org, STATEMENT_DAY)) == [
        (0, "statement", "email", "send", ""), (0, "statement", "sms", "send", ""),
    ]  # fmt: skip
    # A later feed of the same day, before the outbox ticks: two claims filed, 3 > 2.
    import_feed(feed_bytes, STATEMENT_DAY, open_claims=3)
    send_due(org, STATEMENT_DAY)
    assert providers.accepted() == [] and mail.outbox == []
    assert sorted(Message.objects.values_list("channel", "state", "reason")) == [
        ("email", State.CANCELLED, Reason.CLAIMS_PENDING), ("sms", State.CANCELLED, Reason.CLAIMS_PENDING),
    ]  # fmt: skip
    # The sends became the steps' claims holds: the steps are free again (D1), the bill waits for the claims.
    assert sorted(DunningDecision.objects.values_list("channel", "action", "reason", "message_id")) == [
        ("email", "skip", "claims_pending", None), ("sms", "skip", "claims_pending", None),
    ]  # fmt: skip
    assert all(k.startswith("hold:") for k in DunningDecision.objects.values_list("step_key", flat=True))
    assert Bill.objects.get().claims_held

    next_day = STATEMENT_DAY + timedelta(days=1)  # still over the limit: the run sends nothing
    assert run_only(org, next_day) == []
    send_due(org, next_day)
    assert providers.accepted() == [] and mail.outbox == []

    settled = STATEMENT_DAY + timedelta(days=5)
    import_feed(feed_bytes, settled, open_claims=0)
    assert decisions(run_only(org, settled)) == [
        (0, "statement", "email", "send", ""), (0, "statement", "sms", "send", ""),
    ]  # fmt: skip
    send_due(org, settled)
    texts = providers.accepted()
    assert [m["To"] for m in texts] == ["+18015550100"] and "Smile Dental" in texts[0]["Body"]
    assert [m.to for m in mail.outbox] == [["p1@example.com"]]
    assert not Bill.objects.get().claims_held


def test_bulk_payment_request_is_not_rechecked_for_claims(org, feed_bytes, providers):
    """A payment request the front desk sends by hand goes: R10 showed the claims on the list it chose from."""
    from notifications.models import Channel, Kind
    from practices.models import Patient

    import_feed(feed_bytes, STATEMENT_DAY, open_claims=3)
    patient, bill = Patient.objects.get(), Bill.objects.get()
    message = Message.objects.create(
        organization=org, patient=patient, bill=bill, generation=bill.generation, kind=Kind.REQUEST, channel=Channel.SMS,
        destination="+18015550100", body="Smile Dental: your balance", state=State.PENDING,
    )  # fmt: skip
    with time_machine.travel(daytime(STATEMENT_DAY), tick=False):
        states = messages_send([message.pk])
    message.refresh_from_db()
    assert (states, message.reason) == ([State.SENT], "")
    assert len(providers.accepted()) == 1


def test_chunk_reads_claims_without_a_query_per_message(
    org, feed_bytes, providers, django_assert_max_num_queries
):
    """The claims and the limit come with the chunk's one read of its messages (select_related)."""
    from notifications.outbox import _sendable

    import_feed(feed_bytes, STATEMENT_DAY, open_claims=1)
    run_only(org, STATEMENT_DAY)
    ids = list(Message.objects.values_list("pk", flat=True))
    with django_assert_max_num_queries(1):
        for message in _sendable().in_bulk(ids).values():
            assert message.organization.payment_settings.max_open_claims == 2
            assert message.bill is not None and message.bill.guarantor.open_claims == 1
