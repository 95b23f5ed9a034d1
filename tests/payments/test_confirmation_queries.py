"""What a confirmation costs (SPEC §11 checkout confirmations, H2): SQL statements per event, counted with
Django's CaptureQueriesContext, and nothing done twice or inline.

A hosted checkout announces each payment twice, as ``payment_intent.succeeded`` and
``checkout.session.completed`` (https://docs.stripe.com/payments/checkout/fulfill-orders: fulfil on either,
once), and Stripe redelivers an event with the same id until it is acknowledged
(https://docs.stripe.com/webhooks#handle-duplicate-events). The events come from the fake Stripe server
(tests/fakes/stripe_server.py), signed with Stripe's scheme, through ``/webhooks/stripe/``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from payments.models import Payment, ProcessorEvent
from practices.models import AuditEvent, Organization
from tests.fakes.stripe_server import FakeStripe
from tests.payments.test_confirmations import campaign, fake, organization, post, start

__all__ = ["fake", "organization"]  # the fixtures, shared with test_confirmations

# The statement counts are PostgreSQL's (the §11 figure is measured there); SQLite, the embedded default, takes
# the same path in a few more statements (payments/confirmations.py, ``*_portable``), which
# test_confirmations.py covers on either database.
pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _statements(queries: CaptureQueriesContext) -> list[str]:
    """The SQL sent, less the test case's own savepoints (production has none: no outer transaction)."""
    return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"].upper()]


def _deliver(client: Client, fake: FakeStripe, event: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    with CaptureQueriesContext(connection) as queries:
        answer = post(client, fake, event)
    assert answer.status_code == 200, answer.content
    return json.loads(answer.content), _statements(queries)


def test_the_second_announcement_and_every_retry_are_one_statement_and_change_nothing(
    client: Client, fake: FakeStripe, organization: Organization, monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    queued: list[int] = []
    monkeypatch.setattr("payments.tasks.receipt_email.delay", queued.append)
    bill = campaign(organization, "150.00")
    _link, checkout = start(bill, "50.00")
    fake.complete(checkout.session_id)
    intent_event, session_event = list(fake.pending)
    with django_capture_on_commit_callbacks(execute=True):
        first, _ = _deliver(client, fake, intent_event)
    assert first == {"received": True, "duplicate": False, "outcome": "recorded"}

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second, second_sql = _deliver(client, fake, session_event)
        retried_first, retry_first_sql = _deliver(client, fake, intent_event)
        retried_second, retry_second_sql = _deliver(client, fake, session_event)

    assert second == {"received": True, "duplicate": False, "outcome": "already recorded"}
    assert retried_first["duplicate"] and retried_second["duplicate"]
    # One statement each: no transaction, no lock on the bill, no read of the checkout.
    assert (len(second_sql), len(retry_first_sql), len(retry_second_sql)) == (1, 1, 1), second_sql
    assert not any("FOR NO KEY UPDATE" in sql for sql in second_sql + retry_first_sql + retry_second_sql)
    assert callbacks == []  # no second receipt
    assert queued == [Payment.objects.get().pk]
    assert Payment.objects.count() == 1
    assert AuditEvent.objects.filter(action="payment.record").count() == 1
    assert dict(ProcessorEvent.objects.values_list("event_id", "outcome")) == {
        intent_event["id"]: "recorded", session_event["id"]: "already recorded",
    }  # fmt: skip
    bill.refresh_from_db()
    assert bill.amount_due == 100


def test_a_new_payment_is_recorded_in_a_bounded_number_of_statements_with_its_receipt_after_commit(
    client: Client, fake: FakeStripe, organization: Organization, monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    queued: list[int] = []
    monkeypatch.setattr("payments.tasks.receipt_email.delay", queued.append)
    bill = campaign(organization, "150.00")
    _link, checkout = start(bill, "150.00")
    fake.complete(checkout.session_id)
    _intent_event, session_event = list(fake.pending)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answer, sql = _deliver(client, fake, session_event)
        assert queued == []  # not inline: after the commit

    assert answer["outcome"] == "recorded"
    # Is it recorded already? (one read), the event's row, the checkout with its bill locked, the payment with
    # the bill, the checkout and the audit row (one statement), the event's outcome.
    assert len(sql) == 5, sql
    assert sum(1 for s in sql if "practices_bill" in s and s.lstrip().upper().startswith("SELECT")) == 1
    assert not any("notifications_message" in s for s in sql)  # the receipt is the worker's
    assert len(callbacks) == 1
    callbacks[0]()
    payment = Payment.objects.get()
    assert queued == [payment.pk]
    bill.refresh_from_db()
    assert (bill.amount_due, bill.state, bill.ended_at is not None) == (0, "paid", True)
    audit = AuditEvent.objects.get(action="payment.record")
    assert (audit.object_type, audit.object_id, audit.actor_label) == (
        "payments.Payment",
        str(payment.pk),
        "stripe",
    )
    assert audit.changes == {
        "amount": "150.00", "processor": "stripe", "amount_due": ["150.00", "0.00"], "state": ["active", "paid"],
    }  # fmt: skip
